"""The k-fold protocol: disjoint, covering, stratified folds, and the AdAct CNN preset."""

from __future__ import annotations

import pytest
import torch

from adaptrun.config.check import check_config
from adaptrun.core.errors import ConfigError
from adaptrun.data import load_dataset
from adaptrun.data.images import Split
from adaptrun.data.splits import fold_ids, kfold


def test_folds_are_disjoint_cover_the_data_and_are_stratified():
    labels = torch.tensor([0] * 23 + [1] * 7 + [2] * 50 + [3] * 1)
    ids = fold_ids(labels, folds=10, seed=3)
    assert ids.min() == 0 and ids.max() == 9
    sizes = torch.bincount(ids, minlength=10)
    assert sizes.max() - sizes.min() <= 1  # balanced
    for cls in labels.unique():
        per_fold = torch.bincount(ids[labels == cls], minlength=10)
        assert per_fold.max() - per_fold.min() <= 1  # stratified
    assert torch.equal(fold_ids(labels, 10, 3), ids) and not torch.equal(
        fold_ids(labels, 10, 4), ids
    )


def test_kfold_test_splits_partition_the_pooled_data():
    x = torch.arange(60, dtype=torch.uint8).view(60, 1, 1, 1)
    y = torch.arange(60) % 4
    train, test = Split(x[:45], y[:45]), Split(x[45:], y[45:])
    seen = []
    for fold in range(5):
        tr, te = kfold(train, test, folds=5, fold=fold, seed=0)
        assert len(tr) + len(te) == 60 and len(te) == 12
        assert not set(tr.x.flatten().tolist()) & set(te.x.flatten().tolist())
        seen += te.x.flatten().tolist()
    assert sorted(seen) == list(range(60))


def test_kfold_through_the_config(compose_cfg):
    cfg = compose_cfg(["protocol=kfold", "protocol.fold=2"])
    data = load_dataset(cfg.dataset, cfg.protocol)
    assert len(data.train) + len(data.test) == 1797
    assert 178 <= len(data.test) <= 181
    holdout = load_dataset(cfg.dataset)
    assert len(holdout.test) == 360


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["protocol=kfold", "protocol.fold=10"], "protocol.fold"),
        (["protocol=kfold", "protocol.folds=1", "protocol.fold=0"], "protocol.folds"),
        (["experiment=jagtap_burgers", "protocol=kfold"], "protocol"),
    ],
)
def test_bad_protocols_are_refused(compose_cfg, overrides, key):
    with pytest.raises(ConfigError) as info:
        check_config(compose_cfg(overrides))
    assert info.value.key == key


def test_adact_vgg_preset_is_the_papers_setup(compose_cfg):
    for blocks in (1, 2, 3):
        cfg = compose_cfg(["experiment=adact_vgg", f"model=vgg{blocks}", "activation=adact"])
        check_config(cfg)
        assert (cfg.dataset.name, cfg.model.blocks, cfg.model.init) == (
            "cifar10",
            blocks,
            "glorot_normal",
        )
        assert (cfg.optimizer.name, cfg.optimizer.lr, cfg.optimizer.momentum) == ("sgd", 0.001, 0.9)
        assert cfg.trainer.batch_size == 64 and cfg.augmentation.ops == []
        assert (cfg.protocol.name, cfg.protocol.folds) == ("kfold", 10)
        assert cfg.activation.granularity == "channel"
