"""Where training data lives: the placement rule, and that host-resident data trains the same."""

from __future__ import annotations

import pytest

from adaptrun.data import choose_placement
from adaptrun.runner.run import run


@pytest.mark.parametrize(
    ("mode", "nbytes", "free", "expected"),
    [
        ("auto", 10, None, "device"),  # CPU: the host is the device
        ("auto", 4 * 2**30, 16 * 2**30, "device"),
        ("auto", 12 * 2**30, 16 * 2**30, "host"),  # more than half the free memory
        ("device", 12 * 2**30, 16 * 2**30, "device"),
        ("host", 10, 16 * 2**30, "host"),
    ],
)
def test_choose_placement(mode, nbytes, free, expected):
    assert choose_placement(mode, nbytes, free) == expected


def test_host_placement_trains_identically(compose_cfg, tmp_path):
    base = ["trainer.epochs=2", "augmentation=custom", "activation=neuronwise_slope"]
    on_device = run(compose_cfg([*base, "dataset.placement=device"]), tmp_path / "device")
    on_host = run(compose_cfg([*base, "dataset.placement=host"]), tmp_path / "host")
    for key in ("final_train_loss", "final_test_acc", "steps"):
        assert on_host[key] == on_device[key]
