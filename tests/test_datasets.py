"""The seven benchmarks through torchvision's real loaders, on files in their real formats."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import read_metrics, run_dirs
from dataset_fixtures import DATASETS, SEMEION_SPLIT, checksums, point_checksums_at, write
from torchvision import datasets as tvd

from adaptrun.data import load_dataset

HERE = Path(__file__).resolve().parent


@pytest.fixture
def restore_torchvision_tables():
    """Undo point_checksums_at and URL patches after each test."""
    saved = {
        (cls, attr): getattr(cls, attr)
        for cls in (tvd.CIFAR10, tvd.CIFAR100, tvd.SVHN, tvd.SEMEION, tvd.MNIST)
        for attr in (
            "train_list",
            "test_list",
            "meta",
            "split_list",
            "md5_checksum",
            "url",
            "mirrors",
        )
        if attr in cls.__dict__
    }
    yield
    for (cls, attr), value in saved.items():
        setattr(cls, attr, value)


def _overrides(name: str, root: Path, *extra: str) -> list[str]:
    semeion = SEMEION_SPLIT if name == "semeion" else []
    return [f"dataset={name}", f"dataset.root={root}", "dataset.download=false", *semeion, *extra]


def _rows(x: torch.Tensor | np.ndarray) -> list[bytes]:
    return [row.tobytes() for row in np.asarray(x).reshape(len(x), -1)]


@pytest.mark.parametrize("name", DATASETS)
def test_loader_returns_the_pixels_and_labels_written(
    name, tmp_path, compose_cfg, restore_torchvision_tables
):
    written = write(name, tmp_path)
    point_checksums_at(checksums(tmp_path))
    data = load_dataset(compose_cfg(_overrides(name, tmp_path)).dataset)
    assert (
        data.train.x.dtype == torch.uint8
        and data.shape == written[next(iter(written))][0].shape[1:]
    )
    if name == "semeion":  # one pool, split 20 / rest by the seed
        x_all, y_all = written["all"]
        assert (len(data.train), len(data.test)) == (20, 10)
        label_of = dict(zip(_rows(x_all), y_all.tolist(), strict=True))
        for split in (data.train, data.test):
            assert [label_of[r] for r in _rows(split.x)] == split.y.tolist()
        assert sorted(_rows(data.train.x) + _rows(data.test.x)) == sorted(_rows(x_all))
        return
    for split in ("train", "test"):
        x, y = written[split]
        assert np.array_equal(getattr(data, split).x.numpy(), x)
        assert np.array_equal(getattr(data, split).y.numpy(), y)


@pytest.mark.parametrize("name", DATASETS)
def test_train_val_test_never_overlap(name, tmp_path, compose_cfg, restore_torchvision_tables):
    write(name, tmp_path)
    point_checksums_at(checksums(tmp_path))
    full = load_dataset(compose_cfg(_overrides(name, tmp_path)).dataset)
    data = load_dataset(
        compose_cfg(_overrides(name, tmp_path, "dataset.val_fraction=0.25")).dataset
    )
    train, val, test = (set(_rows(s.x)) for s in (data.train, data.val, data.test))
    assert len(val) >= 4 and not (train & val) and not (train & test) and not (val & test)
    assert train | val == set(_rows(full.train.x))  # validation comes out of train only
    again = load_dataset(
        compose_cfg(_overrides(name, tmp_path, "dataset.val_fraction=0.25")).dataset
    )
    assert torch.equal(again.val.x, data.val.x)  # seeded


def test_semeion_defaults_to_the_papers_1000_593_split(
    tmp_path, compose_cfg, restore_torchvision_tables
):
    from dataset_fixtures import write_semeion

    write_semeion(tmp_path, np.random.default_rng(1), n=1593)
    point_checksums_at(checksums(tmp_path))
    cfg = compose_cfg(["dataset=semeion", f"dataset.root={tmp_path}", "dataset.download=false"])
    data = load_dataset(cfg.dataset)
    assert (len(data.train), len(data.test)) == (1000, 593)


def test_every_dataset_trains_end_to_end_through_the_cli(tmp_path):
    from dataset_fixtures import write_semeion

    data = tmp_path / "data"
    train_sizes = {name: 20 for name in DATASETS if name != "semeion"}
    for name in train_sizes:
        write(name, data)
    write_semeion(data, np.random.default_rng(0), n=1593)  # full size: the paper's 1000 / 593
    train_sizes["semeion"] = 1000
    env = {**os.environ, "FIXTURE_MD5": json.dumps(checksums(data))}
    args = [
        "-m",
        f"dataset={','.join(DATASETS)}",
        f"dataset.root={data}",
        "dataset.download=false",
        "trainer.epochs=2",
        "trainer.batch_size=8",
        "augmentation=paper",
        "activation=neuronwise_slope",
    ]
    result = subprocess.run(
        [sys.executable, str(HERE / "cli_with_fixture_checksums.py"), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    runs = {read_metrics(d)["hparams"]["dataset"]: d for d in run_dirs(tmp_path / "outputs")}
    assert sorted(runs) == sorted(DATASETS)
    for name, run_dir in runs.items():
        metrics = read_metrics(run_dir)
        assert metrics["status"] == "completed", (name, metrics["error"])
        assert metrics["steps"] == 2 * -(-train_sizes[name] // 8)  # how many samples were read
