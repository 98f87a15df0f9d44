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

from adaptrun.core.errors import DatasetError
from adaptrun.data import load_dataset
from adaptrun.data.torchvision_sets import SOURCES

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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
@pytest.mark.parametrize("name", DATASETS)
def test_missing_files_with_download_off_say_where_and_what(name, tmp_path, compose_cfg):
    cfg = compose_cfg(_overrides(name, tmp_path))
    with pytest.raises(DatasetError) as info:
        load_dataset(cfg.dataset)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"dataset {name}: not found in {tmp_path}")
    for path, _ in SOURCES[name].files(tmp_path):
        assert path.name in message
    assert "dataset.download=true" in message and "ADAPTRUN_DATA" in message
    assert list(tmp_path.iterdir()) == []  # looked, wrote nothing


@pytest.mark.slow
def test_missing_dataset_through_the_cli_is_one_line_and_recorded(tmp_path):
    from conftest import run_cli

    args = ["dataset=mnist", f"dataset.root={tmp_path / 'data'}", "dataset.download=false"]
    result = run_cli(args, cwd=tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("adaptrun: error: dataset mnist: not found in ")
    assert "train-images-idx3-ubyte" in line
    assert "not found" not in result.stdout  # said once, not echoed by the console log
    (run_dir,) = run_dirs(tmp_path / "outputs")
    assert read_metrics(run_dir)["status"] == "failed"
    verbose = run_cli([*args, "hydra.verbose=true"], cwd=tmp_path)
    assert verbose.returncode != 0 and "Traceback" in verbose.stderr


@pytest.mark.slow
@pytest.mark.parametrize("name", ["semeion", "cifar10", "mnist", "svhn"])
def test_unreachable_network_fails_cleanly_and_leaves_nothing(
    name, tmp_path, compose_cfg, restore_torchvision_tables
):
    dead = "http://127.0.0.1:9/"  # the discard port: connection refused at once
    tvd.SEMEION.url = dead + "semeion.data"
    tvd.CIFAR10.url = dead + "cifar-10-python.tar.gz"
    tvd.MNIST.mirrors = [dead]
    tvd.SVHN.split_list = {k: [dead + f, f, m] for k, (_, f, m) in tvd.SVHN.split_list.items()}
    root = tmp_path / "data"
    cfg = compose_cfg([*_overrides(name, root)[:2], "dataset.download=true"])
    with pytest.raises(DatasetError) as info:
        load_dataset(cfg.dataset)
    assert f"dataset {name}: download into {root} failed" in str(info.value)
    assert list(root.rglob("*")) == []  # no half-downloaded file for the next run to trust


@pytest.mark.slow
def test_corrupt_cifar_batch_is_named(tmp_path, compose_cfg, restore_torchvision_tables):
    write("cifar10", tmp_path)
    point_checksums_at(checksums(tmp_path))
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:-1] + b"\x00")
    with pytest.raises(DatasetError, match=r"data_batch_3 is corrupt \(MD5"):
        load_dataset(compose_cfg(_overrides("cifar10", tmp_path)).dataset)


def test_truncated_idx_file_is_named(tmp_path, compose_cfg):
    write("kmnist", tmp_path)
    labels = tmp_path / "KMNIST" / "raw" / "t10k-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:-3])
    with pytest.raises(DatasetError, match=r"t10k-labels-idx1-ubyte is corrupt \(15 bytes"):
        load_dataset(compose_cfg(_overrides("kmnist", tmp_path)).dataset)


def test_unreadable_file_with_a_matching_checksum_is_reported(
    tmp_path, compose_cfg, restore_torchvision_tables
):
    write("svhn", tmp_path)
    (tmp_path / "test_32x32.mat").write_bytes(b"not a MATLAB file")
    point_checksums_at(checksums(tmp_path))
    with pytest.raises(DatasetError, match="could not be read"):
        load_dataset(compose_cfg(_overrides("svhn", tmp_path)).dataset)


@pytest.mark.parametrize(
    ("model", "dataset"), [("lenet", "digits"), ("vgg3", "semeion"), ("lenet", "semeion")]
)
def test_model_dataset_pairs_are_checked_when_composed(model, dataset, compose_cfg):
    from adaptrun.config.check import check_config
    from adaptrun.core.errors import ConfigError

    cfg = compose_cfg([f"model={model}", f"dataset={dataset}"])
    if (model, dataset) == ("lenet", "digits"):
        with pytest.raises(ConfigError) as info:
            check_config(cfg)
        assert "model lenet cannot take dataset digits" in str(info.value)
    else:
        check_config(cfg)  # semeion's 16x16 fits both


@pytest.mark.slow
@pytest.mark.parametrize("name", DATASETS)
@pytest.mark.parametrize("augmentation", ["none", "paper"])
def test_benchmark_preset_follows_the_paper(name, augmentation, compose_cfg):
    from adaptrun.config.check import check_config

    cfg = compose_cfg(
        [
            "experiment=jagtap_benchmark",
            f"dataset={name}",
            f"augmentation={augmentation}",
            "activation=layerwise_slope",
        ]
    )
    check_config(cfg)
    resnet = name in ("cifar10", "cifar100", "svhn")
    assert cfg.model.name == ("preact_resnet18" if resnet else "lenet")
    assert cfg.trainer.epochs == (200 if augmentation == "paper" else 50)
    assert (cfg.optimizer.name, cfg.optimizer.lr, cfg.optimizer.momentum) == ("sgd", 0.01, 0.9)
    assert cfg.trainer.batch_size == 64 and list(cfg.optimizer.milestones) == [10, 100]
    assert cfg.activation.slope_recovery == 1.0
    recipe = [op["op"] for op in cfg.augmentation.ops]
    assert recipe == (
        [] if augmentation == "none" else [o["op"] for o in cfg.dataset.paper_augmentation]
    )


@pytest.mark.parametrize(
    ("dataset", "model", "expected", "keys"),
    [
        ("fashion_mnist", "mlp", "mlp", {"hidden_layers", "width"}),
        ("cifar10", "vgg3", "vgg", {"blocks", "filters", "dense"}),
        ("svhn", "lenet", "lenet", {"dropout"}),
    ],
)
def test_an_explicit_model_wins_over_the_presets_choice(
    dataset, model, expected, keys, compose_cfg
):
    """The preset picks the paper's model per dataset, but model= on the command line is
    what is composed, built and recorded, with that model's own keys and no others."""
    from adaptrun.config.check import check_config
    from adaptrun.records.hparams import describe

    cfg = compose_cfg(["experiment=jagtap_benchmark", f"dataset={dataset}", f"model={model}"])
    check_config(cfg)
    assert cfg.model.name == expected and describe(cfg)["model"] == expected
    assert set(cfg.model) == {"name", "init", "init_std", *keys}


def test_an_idx_file_with_the_wrong_data_type_is_named(tmp_path, compose_cfg):
    write("fashion_mnist", tmp_path)
    images = tmp_path / "FashionMNIST" / "raw" / "train-images-idx3-ubyte"
    data = bytearray(images.read_bytes())
    data[2] = 0x09  # one flipped bit: int8 instead of uint8
    images.write_bytes(bytes(data))
    with pytest.raises(DatasetError) as info:
        load_dataset(compose_cfg(_overrides("fashion_mnist", tmp_path)).dataset)
    assert str(info.value) == (
        f"dataset fashion_mnist: {images} is corrupt (its header declares int8 data in 3 "
        "dimensions; MNIST-family files hold uint8 in 3); delete it and download it again"
    )


def test_a_dataset_root_that_is_a_file_is_named(tmp_path, compose_cfg):
    root = tmp_path / "data.tar"
    root.write_bytes(b"not a folder")
    with pytest.raises(DatasetError, match=rf"dataset\.root {root} is a file, not a folder"):
        load_dataset(compose_cfg(_overrides("fashion_mnist", root)).dataset)


def test_compressed_idx_files_are_extracted_once_atomically(tmp_path, compose_cfg):
    """torchvision's download leaves *-ubyte.gz in raw/, Debian's dataset-fashion-mnist ships
    only those: both load, extracted on first use."""
    import gzip

    written = write("fashion_mnist", tmp_path)
    raw = tmp_path / "FashionMNIST" / "raw"
    for path in raw.iterdir():
        (raw / f"{path.name}.gz").write_bytes(gzip.compress(path.read_bytes()))
        path.unlink()
    data = load_dataset(compose_cfg(_overrides("fashion_mnist", tmp_path)).dataset)
    assert _rows(data.test.x) == _rows(written["test"][0])
    assert sorted(p.name for p in raw.iterdir() if not p.name.endswith(".gz")) == [
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
    ]
    broken = raw / "t10k-labels-idx1-ubyte"
    broken.unlink()
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b truncated")
    with pytest.raises(DatasetError, match=r"t10k-labels-idx1-ubyte\.gz could not be decompressed"):
        load_dataset(compose_cfg(_overrides("fashion_mnist", tmp_path)).dataset)
    assert not broken.exists() and not list(raw.glob("*.tmp"))


def test_debians_flat_read_only_fashion_mnist_folder_is_used_in_place(
    tmp_path, compose_cfg, monkeypatch
):
    """Debian's dataset-fashion-mnist puts the four .gz files directly in
    /usr/share/datasets/fashion-mnist, read-only: dataset.root pointed there loads, the
    files extracted once into the user's cache, the folder itself untouched."""
    import gzip

    written = write("fashion_mnist", tmp_path / "layout")
    debian = tmp_path / "debian"
    debian.mkdir()
    for path in (tmp_path / "layout" / "FashionMNIST" / "raw").iterdir():
        (debian / f"{path.name}.gz").write_bytes(gzip.compress(path.read_bytes()))
    before = sorted((p.name, p.stat().st_mtime_ns) for p in debian.iterdir())
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    data = load_dataset(compose_cfg(_overrides("fashion_mnist", debian)).dataset)
    assert _rows(data.test.x) == _rows(written["test"][0])
    assert sorted((p.name, p.stat().st_mtime_ns) for p in debian.iterdir()) == before
    raw = tmp_path / "cache" / "adaptrun" / "extracted" / "fashion_mnist" / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == [
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
    ]
    again = load_dataset(compose_cfg(_overrides("fashion_mnist", debian)).dataset)  # cached
    assert _rows(again.train.x) == _rows(data.train.x)
