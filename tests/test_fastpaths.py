"""The trainer's fast paths: what ``auto`` picks per device and task, and that the
channels-last path trains like the plain one."""

from __future__ import annotations

import pytest
import torch
from conftest import compose_config

from adaptrun.config.check import check_config
from adaptrun.core.errors import ConfigError
from adaptrun.runner.run import run
from adaptrun.training.fastpaths import FastPaths, resolve

CUDA, CPU = torch.device("cuda"), torch.device("cpu")
AUTO = {"precision": "auto", "channels_last": "auto", "stack": 1}


@pytest.mark.parametrize(
    ("trainer", "device", "task", "expected"),
    [
        (AUTO, CUDA, "classification", FastPaths("bf16", True)),
        (AUTO, CUDA, "burgers", FastPaths("fp32", False)),  # second derivatives want fp32
        (AUTO, CUDA, "function", FastPaths("fp32", False)),
        (AUTO, CPU, "classification", FastPaths("fp32", False)),  # CPU: the plain reference
        ({**AUTO, "stack": 4}, CUDA, "classification", FastPaths("bf16", False)),
        ({**AUTO, "precision": "fp32", "channels_last": False}, CUDA, "classification",
         FastPaths("fp32", False)),
        ({**AUTO, "precision": "bf16", "channels_last": True}, CPU, "classification",
         FastPaths("bf16", True)),
    ],
)  # fmt: skip
def test_auto_is_fast_on_cuda_and_plain_on_cpu(trainer, device, task, expected):
    from adaptrun.tasks import TASKS

    assert resolve(trainer, device, TASKS[task].capabilities.images) == expected


@pytest.mark.slow
def test_channels_last_trains_like_the_plain_layout(tmp_path):
    args = ["model=vgg1", "activation=neuronwise", "activation.granularity=channel"]
    args += ["trainer.max_steps=10", "trainer.epochs=1"]
    plain = run(compose_config([*args, "trainer.channels_last=false"]), tmp_path / "plain")
    fast = run(compose_config([*args, "trainer.channels_last=true"]), tmp_path / "nhwc")
    for key in ("final_train_loss", "final_test_loss", "final_test_acc"):
        assert fast[key] == pytest.approx(plain[key], rel=1e-3, abs=1 / 360), key


def test_channels_last_batches_come_in_that_layout():
    from adaptrun.tasks import TASKS

    task = TASKS["classification"].build(compose_config([]), CPU)
    task.memory_format = torch.channels_last
    x, _ = next(task.train_batches(0))
    assert x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)


def test_bad_fast_path_values_are_refused():
    with pytest.raises(ConfigError, match=r"trainer\.channels_last: must be auto, true or false"):
        check_config(compose_config(["trainer.channels_last=sometimes"]))
    with pytest.raises(ConfigError, match="unknown precision 'fp16'; valid: auto, fp32, bf16"):
        check_config(compose_config(["trainer.precision=fp16"]))
