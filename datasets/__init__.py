"""Spiking datasets: SHD/SSC readers, event binning, on-disk frame caches, batching, augmentation.

Data flow: HDF5/event files → events → :class:`ToFrames` → frames ``[T, C]`` per sample →
cached on disk → :func:`pad_collate` → batches ``[T, B, C]`` + ``lengths``.
"""

from snn.datasets.binning import ToFrames, bin_events, bin_events_batch
from snn.datasets.cache import CacheError, FrameCache, default_cache_dir
from snn.datasets.collate import pad_collate
from snn.datasets.shd import SHD, SSC, SpokenDigits
from snn.datasets.spike_h5 import DatasetFormatError, SpikeTrainH5
from snn.datasets.splits import holdout_split
from snn.datasets.augment import ChannelMask, ChannelShift, Compose, CutMix, TimeJitter, TimeMask
from snn.datasets.digits8x8 import Digits8x8
from snn.datasets.vision import CIFAR10DVS, NMNIST, DVSGesture, EventFramesDataset, ToFrames2D, bin_events_2d
from snn.datasets.registry import DATASETS, get_dataset
from snn.datasets import summary, plot
from snn.datasets.summary import summarize
from snn.datasets.plot import raster

__all__ = [
    "ToFrames", "bin_events", "bin_events_batch",
    "CacheError", "FrameCache", "default_cache_dir",
    "pad_collate",
    "SHD", "SSC", "SpokenDigits",
    "DatasetFormatError", "SpikeTrainH5",
    "holdout_split",
    "ChannelMask", "ChannelShift", "Compose", "CutMix", "TimeJitter", "TimeMask",
    "Digits8x8",
    "CIFAR10DVS", "NMNIST", "DVSGesture", "EventFramesDataset", "ToFrames2D", "bin_events_2d",
    "DATASETS", "get_dataset",
    "summary", "plot", "summarize", "raster",
]
