"""The spike-driven transformer configs in examples/configs: data, registered model, one training step."""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from snn.config import load_config
from snn.datasets import pad_collate
from snn.models import build_model
from snn.training.data import build_datasets

CONFIGS = Path(__file__).resolve().parents[2] / "examples" / "configs"


def _step(model, x, y):
    out = model(x)
    loss = model.loss(out, y)
    loss.backward()
    assert torch.isfinite(loss)
    return out


def test_digits_config_trains_the_registered_model():
    pytest.importorskip("sklearn")
    cfg = load_config(CONFIGS / "digits8x8_sdt.yaml")
    data = build_datasets(cfg.data)
    assert (data.n_inputs, data.n_classes, len(data.test)) == (1, 10, 450)
    model = build_model(cfg, data.n_inputs, data.n_classes)
    x, y, _ = pad_collate([data.train[i] for i in range(4)])
    assert x.shape == (1, 4, 1, 8, 8)                      # one frame per sample: the model repeats it over T
    out = _step(model, x, y)
    assert out.shape == (cfg.model.time_steps, 4, 10)


def _write_tonic_dvs_gesture(root: Path, per_user: int = 11, users: int = 10, seed: int = 0) -> None:
    """A small DVSGesture tree in tonic's layout: <root>/DVSGesture/{ibmGestureTrain,ibmGestureTest}.tar.gz (the
    archives tonic checks for) and the extracted folders user<NN>_<lighting>/<label>.npy with rows (x, y, p, t ms)."""
    rng = np.random.default_rng(seed)
    base = root / "DVSGesture"
    for folder in ("ibmGestureTrain", "ibmGestureTest"):
        base.mkdir(parents=True, exist_ok=True)
        (base / f"{folder}.tar.gz").write_bytes(b"")
        for u in range(users):
            d = base / folder / f"user{u + 1:02d}_fluorescent"
            d.mkdir(parents=True)
            for label in range(per_user):
                n = 400
                ev = np.stack([rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n),
                               np.sort(rng.integers(0, 1500, n))], axis=1).astype(np.int64)
                np.save(d / f"{label}.npy", ev)


@pytest.mark.slow
def test_dvs_gesture_config_reads_tonic_files_and_steps(tmp_path):
    _write_tonic_dvs_gesture(tmp_path / "data")
    cfg = load_config(CONFIGS / "dvs_gesture_sdt.yaml",
                      overrides=[f"data.root={tmp_path / 'data'}", f"data.cache_dir={tmp_path / 'cache'}"])
    data = build_datasets(cfg.data)
    assert (data.n_inputs, data.n_classes) == (2, 11)
    assert len(data.train) + len(data.valid) == 110 and len(data.test) == 110
    x0, _ = data.test[0]
    assert x0.shape == (16, 2, 128, 128) and x0.sum() > 0
    model = build_model(cfg, data.n_inputs, data.n_classes)
    assert sum(p.numel() for p in model.parameters()) == 2_567_051          # the published Gesture model
    x, y, _ = pad_collate([data.train[i] for i in range(2)])
    assert _step(model, x, y).shape == (16, 2, 11)


def _aedat4_description(width: int, height: int) -> bytes:
    path = "/mainloop/Recorder/outInfo/"
    return (f'<dv version="2.0"><node name="outInfo" path="{path}"><node name="0" path="{path}0/">'
            '<attr key="compression" type="string">NONE</attr><attr key="typeIdentifier" type="string">EVTS</attr>'
            f'<node name="info" path="{path}0/info/"><attr key="sizeX" type="int">{width}</attr>'
            f'<attr key="sizeY" type="int">{height}</attr></node></node></node></dv>').encode()


def write_aedat4(path: Path, events: np.ndarray, width: int = 128, height: int = 128, packet: int = 500) -> None:
    """An AEDAT 4.0 file (iniVation DV) with one uncompressed event stream, as the ``aedat`` decoder (tonic's
    ``read_aedat4``) reads it: magic line, the IO header (a flatbuffer table: compression 0 = none,
    file_data_position -1 = no index, the XML stream description), then packets ``[stream id u32][size u32]`` each
    holding a size-prefixed ``EVTS`` flatbuffer whose vector of 16-byte structs is ``(t int64 µs, x int16, y int16,
    on bool)``. ``events``: fields ``t, x, y, p``. Offsets are laid out by hand (flatbuffers' little-endian tables:
    a table starts with the signed offset back to its vtable; references are unsigned offsets forward)."""
    desc = _aedat4_description(width, height)
    # IO header: [root 24]["IOHE"][vtable 10,20,4,8,16 + pad][table: soffset 16, compression, pad, i64, uoffset]
    header = struct.pack("<I4s5H2x4x", 24, b"IOHE", 10, 20, 4, 8, 16)
    header += struct.pack("<iiqI", 16, 0, -1, 4) + struct.pack("<I", len(desc)) + desc + b"\0"
    out = [b"#!AER-DAT4.0\r\n", struct.pack("<I", len(header)), header]
    for lo in range(0, len(events), packet):
        chunk = events[lo:lo + packet]
        body = np.zeros(len(chunk), dtype=np.dtype([("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("on", "u1"),
                                                   ("pad", "V3")]))
        body["t"], body["x"], body["y"], body["on"] = chunk["t"], chunk["x"], chunk["y"], chunk["p"]
        # [size][root 16]["EVTS"][vtable 6,8,4 + pad][table: soffset 8, uoffset 4][length][structs from byte 32]
        buf = struct.pack("<I4s3H2xiII", 16, b"EVTS", 6, 8, 4, 8, 4, len(chunk)) + body.tobytes()
        buf = struct.pack("<I", len(buf)) + buf
        out += [struct.pack("<II", 0, len(buf)), buf]
    path.write_bytes(b"".join(out))


CIFAR10_DVS_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def _random_events(rng: np.random.Generator, n: int) -> np.ndarray:
    ev = np.zeros(n, dtype=[("t", "<u8"), ("x", "<u2"), ("y", "<u2"), ("p", "?")])
    ev["t"] = np.sort(rng.integers(0, 1_300_000, n))
    ev["x"], ev["y"], ev["p"] = rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n)
    return ev


def _write_tonic_cifar10_dvs(root: Path, per_class: int = 100, seed: int = 0) -> None:
    """CIFAR10-DVS in tonic's layout: <root>/CIFAR10DVS/CIFAR10DVS.zip (the archive tonic checks for) and the
    extracted <class>/cifar10_<class>_<i>.aedat4 recordings (tonic wants at least 1000 of them)."""
    rng = np.random.default_rng(seed)
    base = root / "CIFAR10DVS"
    base.mkdir(parents=True)
    (base / "CIFAR10DVS.zip").write_bytes(b"")
    for name in CIFAR10_DVS_CLASSES:
        (base / name).mkdir()
        for i in range(per_class):
            write_aedat4(base / name / f"cifar10_{name}_{i}.aedat4", _random_events(rng, 300))


def test_aedat4_writer_round_trips_through_tonics_reader(tmp_path):
    pytest.importorskip("aedat")
    from tonic.io import read_aedat4

    ev = _random_events(np.random.default_rng(1), 1234)          # three packets: 500, 500, 234
    write_aedat4(tmp_path / "r.aedat4", ev)
    got = read_aedat4(str(tmp_path / "r.aedat4"))
    assert len(got) == 1234
    for ours, theirs in zip("txyp", got.dtype.names):
        np.testing.assert_array_equal(got[theirs].astype(np.int64), ev[ours].astype(np.int64))


@pytest.mark.slow
def test_cifar10_dvs_config_reads_tonic_aedat4_files_and_steps(tmp_path):
    pytest.importorskip("aedat")
    _write_tonic_cifar10_dvs(tmp_path / "data")
    cfg = load_config(CONFIGS / "cifar10_dvs_sdt.yaml",
                      overrides=[f"data.root={tmp_path / 'data'}", f"data.cache_dir={tmp_path / 'cache'}"])
    data = build_datasets(cfg.data)
    assert (data.n_inputs, data.n_classes) == (2, 10)
    assert len(data.train) + len(data.valid) == 900 and len(data.test) == 100      # the 90/10 split of 1000
    x0, _ = data.test[0]
    # 10 equal time windows (integer µs): only events past the last whole window (a few at most) are left out
    assert x0.shape[0] == 10 and x0.shape[1] == 2 and 290 <= x0.sum() <= 300
    model = build_model(cfg, data.n_inputs, data.n_classes)
    x, y, _ = pad_collate([data.train[i] for i in range(2)])
    assert _step(model, x, y).shape == (10, 2, 10)


@pytest.mark.slow
def test_cifar10_dvs_config_builds_the_published_model_with_tet():
    cfg = load_config(CONFIGS / "cifar10_dvs_sdt.yaml")
    model = build_model(cfg, 2, 10)
    assert sum(p.numel() for p in model.parameters()) == 2_566_794
    assert model.tet and model.tet_lamb == 0.001 and model.blocks[0].attn.erode
    x = (torch.rand(10, 2, 2, 64, 64) < 0.05).float()        # frames after PoolFrames(2): [T, B, 2, 64, 64]
    assert _step(model, x, torch.tensor([3, 7])).shape == (10, 2, 10)


def test_spoken_digits_config_builds_the_audio_model():
    cfg = load_config(CONFIGS / "spoken_digits_sdt.yaml")
    model = build_model(cfg, 70, 20)
    x = (torch.rand(90, 3, 70) < 0.05).float()
    out = _step(model, x, torch.tensor([0, 5, 19]))
    assert out.shape == (2, 3, 20)
    torch.testing.assert_close(model.scores(out, torch.tensor([90, 80, 70])), out.mean(0))


def test_meta_spikeformer_family_from_a_config_section():
    from snn.config import config_from_dict

    section = {"name": "meta_spikeformer", "base_width": 8, "image_size": 16, "stage3_blocks": 1, "stage4_blocks": 1,
               "heads": 2, "time_steps": 2, "tet": True}
    model = build_model(config_from_dict({"data": {"dataset": "digits8x8"}, "model": section}), 1, 10)
    assert [m.conv.out_channels for m in (model.stages[0], model.stages[2], model.stages[4], model.stages[7])] == [4, 8, 16, 32]
    assert model.tet
    out = _step(model, torch.rand(3, 1, 16, 16), torch.tensor([1, 2, 3]))
    assert out.shape == (2, 3, 10)
    with pytest.raises(ValueError, match="model.size: expected one of"):
        build_model(config_from_dict({"model": {"name": "meta_spikeformer", "size": "4_2"}}), 3, 10)
