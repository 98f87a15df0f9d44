"""The digits loader returns sklearn's pixels; device batching covers every sample once."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits as sklearn_digits

from adaptrun.core.errors import ConfigError
from adaptrun.data import Split, batch_indices, channel_stats, load_dataset, standardize, to_unit
from adaptrun.tasks import ClassificationTask


def test_digits_split_holds_the_real_pixels_and_labels(compose_cfg):
    data = load_dataset(compose_cfg().dataset)
    assert (len(data.train), len(data.test)) == (1437, 360)
    assert data.shape == (1, 8, 8) and data.num_classes == 10
    assert data.train.x.dtype == torch.uint8 and data.train.y.dtype == torch.int64

    # Every stored image is one of sklearn's, grey levels 0..16 scaled to 0..255.
    bunch = sklearn_digits()
    expected = np.rint(bunch.images * 255 / 16).astype(np.uint8)
    lookup = {img.tobytes(): label for img, label in zip(expected, bunch.target, strict=True)}
    for split in (data.train, data.test):
        for img, label in zip(split.x[:, 0].numpy(), split.y.numpy(), strict=True):
            assert lookup[img.tobytes()] == label
    both = torch.cat([data.train.x, data.test.x]).flatten(1).numpy()
    assert len({row.tobytes() for row in both}) == len({img.tobytes() for img in expected})


def test_digits_split_is_stratified_and_seeded(compose_cfg):
    a = load_dataset(compose_cfg().dataset, split_seed=5)
    b = load_dataset(compose_cfg().dataset, split_seed=5)
    assert torch.equal(a.test.x, b.test.x) and torch.equal(a.test.y, b.test.y)
    assert not torch.equal(a.test.x, load_dataset(compose_cfg().dataset, split_seed=6).test.x)
    counts = torch.bincount(a.test.y, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # 360 over 10 classes of ~180


def test_declared_shape_must_match_the_loaded_data(compose_cfg):
    with pytest.raises(ConfigError, match=r"dataset\.shape"):
        load_dataset(compose_cfg(["dataset.shape=[1,8,9]"]).dataset)


def test_normalisation_and_channel_stats():
    x = torch.tensor([[[[0, 255]]], [[[255, 255]]]], dtype=torch.uint8)  # (2,1,1,2)
    mean, std = channel_stats(x)
    assert mean[0] == pytest.approx(0.75)
    assert std[0] == pytest.approx(np.std([0, 1, 1, 1], ddof=1))
    out = standardize(
        to_unit(x), torch.tensor(mean).view(-1, 1, 1), torch.tensor(std).view(-1, 1, 1)
    )
    assert out.dtype == torch.float32
    assert out[0, 0, 0, 0].item() == pytest.approx((0 - 0.75) / std[0], rel=1e-5)


def test_batches_cover_every_sample_once_seeded_per_epoch():
    order = lambda seed: torch.cat(list(batch_indices(103, 10, seed, torch.device("cpu"))))  # noqa: E731
    assert sorted(order(1).tolist()) == list(range(103))
    assert torch.equal(order(1), order(1))
    assert not torch.equal(order(1), order(2))
    assert [len(b) for b in batch_indices(103, 10, None, torch.device("cpu"))][-1] == 3


def test_task_batches_depend_only_on_seed_and_epoch(compose_cfg):
    data = load_dataset(compose_cfg().dataset)
    first = ClassificationTask(data, batch_size=64, seed=3, device=torch.device("cpu"))
    again = ClassificationTask(data, batch_size=64, seed=3, device=torch.device("cpu"))
    x1, y1 = next(first.train_batches(epoch=2))
    x2, y2 = next(again.train_batches(epoch=2))
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    x3, _ = next(first.train_batches(epoch=3))
    assert not torch.equal(x1, x3)
    assert first.steps_per_epoch == 23  # ceil(1437 / 64)


def test_split_rejects_wrong_dtypes():
    with pytest.raises(ValueError, match="uint8"):
        Split(torch.zeros(2, 1, 4, 4), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="labels"):
        Split(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.zeros(3, dtype=torch.long))


def test_a_train_subset_is_seeded_stratified_and_recorded(compose_cfg):
    """dataset.train_subset=N: N training images with every class's share, drawn by the
    run's seed (the same for every column), recorded as train_samples."""
    from adaptrun.config.check import check_config
    from adaptrun.core.errors import DatasetError
    from adaptrun.runner.assemble import build_run

    def train(*extra):
        cfg = compose_cfg(["dataset.train_subset=200", *extra])
        task, _ = build_run(cfg, check_config(cfg), torch.device("cpu"))
        return cfg, task

    _, task = train()
    y = task.data.train.y
    full = load_dataset(compose_cfg([]).dataset).train.y
    assert len(y) == 200 and task.settings()["train_samples"] == 200
    share = torch.bincount(full, minlength=10) / len(full)
    assert (torch.bincount(y, minlength=10) / 200 - share).abs().max() < 0.01
    _, same = train()
    _, other = train("seed=1")
    _, activation = train("activation=global")
    assert torch.equal(same.data.train.x, task.data.train.x)
    assert torch.equal(activation.data.train.x, task.data.train.x)  # every column alike
    assert not torch.equal(other.data.train.x, task.data.train.x)  # a seed redraws it
    with pytest.raises(DatasetError, match=r"dataset.train_subset=5000 exceeds the 1437"):
        train_cfg = compose_cfg(["dataset.train_subset=5000"])
        build_run(train_cfg, check_config(train_cfg), torch.device("cpu"))
    with pytest.raises(ConfigError, match=r"dataset.train_subset: must be null"):
        check_config(compose_cfg(["dataset.train_subset=0"]))
