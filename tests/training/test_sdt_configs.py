"""The spike-driven transformer configs in examples/configs: data, registered model, one training step."""
from __future__ import annotations

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
