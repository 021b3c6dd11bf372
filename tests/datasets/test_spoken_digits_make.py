"""The embedded spoken-digits dataset: committed files (layout, balance, voice split, baseline) and generator."""
from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

import snn.datasets
from snn.datasets import spoken_digits_make as sdm

DATA = Path(snn.datasets.__file__).parent / "data"
TRAIN = DATA / "spoken_digits_train.h5"
TEST = DATA / "spoken_digits_test.h5"
# the committed files were made with this espeak-ng; other versions synthesise slightly different audio
ESPEAK_VERSION = "1.51"

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")


def load(path: Path):
    with h5py.File(path, "r") as f:
        return dict(
            times=f["spikes/times"][()],
            units=f["spikes/units"][()],
            labels=f["labels"][()].astype(np.int64),
            speakers=f["extra/speaker"][()].astype(np.int64),
            keys=[k.decode() for k in f["extra/keys"][()]],
            config=json.loads(f.attrs["config"]),
            voices=json.loads(f.attrs["voices"]),
            times_dtype=h5py.check_vlen_dtype(f["spikes/times"].dtype),
            units_dtype=h5py.check_vlen_dtype(f["spikes/units"].dtype),
        )


@pytest.fixture(scope="module")
def train():
    return load(TRAIN)


@pytest.fixture(scope="module")
def test():
    return load(TEST)


def test_committed_files_are_small_and_in_the_shd_layout(train, test):
    assert TRAIN.stat().st_size + TEST.stat().st_size <= 6_000_000
    for split in (train, test):
        assert split["times_dtype"] == np.float16 and split["units_dtype"] == np.uint16
        assert split["keys"] == list(sdm.KEYS)
        assert split["keys"][0] == "english-zero" and split["keys"][19] == "german-neun"
        assert len(split["times"]) == len(split["units"]) == len(split["labels"]) == len(split["speakers"])
        for t, u in zip(split["times"], split["units"]):
            assert len(t) == len(u) and len(t) > 0
            assert u.max() < 700
            assert t.min() >= 0 and t.max() <= 1.0
    assert 2000 <= len(train["labels"]) <= 3000
    assert 400 <= len(test["labels"]) <= 1000


def test_committed_files_were_made_with_the_default_config(train, test):
    default = json.loads(json.dumps(dataclasses.asdict(sdm.DigitsConfig())))
    assert train["config"] == default and test["config"] == default


def test_twenty_balanced_classes(train, test):
    for split in (train, test):
        counts = np.bincount(split["labels"], minlength=20)
        assert counts.shape == (20,) and counts.min() > 0
        assert np.all(np.abs(counts - counts.mean()) <= 0.1 * counts.mean())


def test_train_and_test_voices_are_disjoint(train, test):
    train_spk, test_spk = set(train["speakers"].tolist()), set(test["speakers"].tolist())
    assert train_spk.isdisjoint(test_spk)
    assert len(train_spk) >= 40 and len(test_spk) >= 10
    train_variants = {v["variant"] for v in train["voices"].values()}
    test_variants = {v["variant"] for v in test["voices"].values()}
    assert train_variants.isdisjoint(test_variants)


def count_features(split, pool: int = 5) -> np.ndarray:
    """Spike counts per group of ``pool`` neighbouring channels (700 -> 140 with pool 5), log1p."""
    x = np.stack([np.bincount(u.astype(np.int64) // pool, minlength=700 // pool) for u in split["units"]])
    return np.log1p(x.astype(np.float32))


@pytest.mark.slow
def test_logistic_regression_on_channel_counts_is_well_above_chance_but_not_perfect(train, test):
    """Measured with these settings: see datasets/data/README.md (band asserted: 30%..97%, chance 5%)."""
    x_tr, x_te = count_features(train), count_features(test)
    mu, sd = x_tr.mean(0), x_tr.std(0) + 1e-6
    x_tr = torch.tensor((x_tr - mu) / sd)
    x_te = torch.tensor((x_te - mu) / sd)
    y_tr = torch.tensor(train["labels"])
    torch.manual_seed(0)
    model = torch.nn.Linear(x_tr.shape[1], 20)
    opt = torch.optim.LBFGS(model.parameters(), max_iter=300, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x_tr), y_tr) + 1e-2 * model.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        acc = (model(x_te).argmax(1).numpy() == test["labels"]).mean()
        train_acc = (model(x_tr).argmax(1).numpy() == train["labels"]).mean()
    assert 0.30 <= acc <= 0.97, f"test accuracy {acc:.3f}"
    assert train_acc > acc  # unseen voices are harder than seen ones


def test_voices_are_seeded_and_split_disjointly():
    config = sdm.DigitsConfig(seed=3)
    a_train, a_test = sdm.make_voices(config)
    b_train, b_test = sdm.make_voices(config)
    assert a_train == b_train and a_test == b_test
    assert {v.speaker for v in a_train}.isdisjoint({v.speaker for v in a_test})
    assert len(a_test) == round(0.2 * config.n_voices)
    assert sdm.make_voices(sdm.DigitsConfig(seed=4)) != (a_train, a_test)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="n_voices"):
        sdm.DigitsConfig(n_voices=1)
    with pytest.raises(ValueError, match="test_fraction"):
        sdm.DigitsConfig(test_fraction=1.0)
    with pytest.raises(ValueError, match="classes"):
        sdm.DigitsConfig(classes=(0, 20))
    with pytest.raises(ValueError, match="repeats"):
        sdm.DigitsConfig(repeats=0)


@needs_espeak
def test_synthesize_returns_audio():
    wave, rate = sdm.synthesize("sieben", "de+m3")
    assert rate == 22050 and wave.ndim == 1 and 0.2 * rate < len(wave) < 2 * rate
    assert 0 < np.abs(wave).max() <= 1.0
    slow, _ = sdm.synthesize("sieben", "de+m3", speed=100)
    assert len(slow) > len(wave)


def test_missing_espeak_is_reported(monkeypatch):
    monkeypatch.setattr(sdm.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="espeak-ng is not installed"):
        sdm.synthesize("seven", "en+m1")


TINY = sdm.DigitsConfig(n_voices=2, classes=(0, 17), repeats=1, test_fraction=0.5, seed=5)


@needs_espeak
@pytest.mark.slow
def test_generator_is_deterministic_on_a_tiny_config(tmp_path):
    a = sdm.make_digits(tmp_path / "a", TINY, processes=1)
    b = sdm.make_digits(tmp_path / "b", TINY, processes=2)
    for pa, pb in zip(a, b):
        da, db = load(pa), load(pb)
        assert len(da["labels"]) == 2
        np.testing.assert_array_equal(da["labels"], db["labels"])
        np.testing.assert_array_equal(da["speakers"], db["speakers"])
        for key in ("times", "units"):
            for xa, xb in zip(da[key], db[key]):
                np.testing.assert_array_equal(xa, xb)
    assert sorted(load(a[0])["labels"].tolist()) == [0, 17]


def espeak_version() -> str:
    out = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout
    return out.split("text-to-speech:")[1].split()[0] if "text-to-speech:" in out else ""


@needs_espeak
def test_committed_samples_are_what_the_generator_produces(train, test):
    if espeak_version() != ESPEAK_VERSION:
        pytest.skip(f"committed files were made with espeak-ng {ESPEAK_VERSION}")
    config = sdm.DigitsConfig()
    train_voices, test_voices = sdm.make_voices(config)
    by_id = {v.speaker: v for v in train_voices + test_voices}
    n_train = len(train["labels"])
    for split, index, offset in ((train, 0, 0), (train, n_train - 1, 0), (test, 5, n_train)):
        voice = by_id[int(split["speakers"][index])]
        t, u = sdm._job((config, voice, int(split["labels"][index]), offset + index))  # the generator's path
        np.testing.assert_array_equal(t.astype(np.float16), split["times"][index])
        np.testing.assert_array_equal(u, split["units"][index])
