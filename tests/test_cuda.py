"""The CUDA path, where a GPU is: the compiled kernels against the reference, bf16 and
channels-last runs against fp32 NCHW, pinned host batches with non-blocking copies, the
compiled classification step and the stacked runner.

Marked ``cuda``: ``pytest -m cuda`` selects them; without a CUDA device each is skipped
with the reason.
"""

from __future__ import annotations

import pytest
import torch
from conftest import BASES, assert_same_run, compare, compose_config, read_metrics, twins

from adaptrun.activations import selfcheck
from adaptrun.activations.fused import triton_available
from adaptrun.config.check import check_config
from adaptrun.runner.run import run

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]
CUDA = ["trainer.device=cuda"]
SHORT = [*CUDA, "trainer.max_steps=40", "trainer.epochs=1", "activation=neuronwise_slope"]

# (input shape, factory shape, granularity, memory format)
LAYOUTS = [
    ((64, 96), (96,), "element", torch.contiguous_format),
    ((16, 32, 9, 9), (32, 9, 9), "channel", torch.contiguous_format),
    ((16, 32, 9, 9), (32, 9, 9), "channel", torch.channels_last),
    ((16, 32, 9, 9), (32, 9, 9), "element", torch.contiguous_format),
    ((16, 32, 9, 9), (32, 9, 9), "element", torch.channels_last),
]
SPECS = [
    *({"variant": v, "base": b} for b in BASES for v in ("layerwise", "neuronwise")),
    {"variant": "adact"},
    {"variant": "apl"},
]


@pytest.mark.skipif(not triton_available(), reason="Triton is not installed")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(("x_shape", "shape", "granularity", "fmt"), LAYOUTS)
@pytest.mark.parametrize("spec", SPECS, ids=lambda s: "-".join(s.values()))
def test_compiled_kernels_match_the_reference(spec, x_shape, shape, granularity, fmt, dtype):
    ref, fused = twins({**spec, "granularity": granularity}, shape)
    x = torch.randn(x_shape, device="cuda").to(dtype=dtype, memory_format=fmt)
    if dtype == torch.float32:
        compare(ref, fused, x)
        return
    # bf16: the kernels compute in fp32 and store bf16; the reference runs in fp32 on the
    # same values, both get the same output gradient, and the error is norm-relative (a
    # summed parameter gradient cancels, so elementwise tolerances would mislead)
    mine, wide = x.detach().clone().requires_grad_(), x.detach().float().requires_grad_()
    got, want = fused(mine), ref(wide)
    assert got.dtype == torch.bfloat16
    seed = torch.randn_like(want).to(torch.bfloat16)
    got.backward(seed)
    want.backward(seed.float())

    def error(a: torch.Tensor, b: torch.Tensor) -> float:
        return ((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-12)).item()

    assert error(got, want) < 3e-2 and error(mine.grad, wide.grad) < 3e-2
    params = dict(fused.named_parameters())
    for name, p in ref.named_parameters():
        assert error(params[name].grad, p.grad) < 3e-2, name


@pytest.mark.skipif(not triton_available(), reason="Triton is not installed")
def test_every_kernel_configuration_passes_its_self_check(monkeypatch):
    from adaptrun.tools import doctor

    monkeypatch.setattr(selfcheck, "VERDICTS", {})
    verdicts = doctor.kernel_checks(torch.device("cuda"))
    assert len(verdicts) == 92
    assert {name: why for name, why in verdicts.items() if why} == {}


def test_bf16_channels_last_run_trains_like_fp32_nchw(tmp_path):
    fast = run(
        compose_config(
            [*SHORT, "trainer.precision=bf16", "trainer.channels_last=true", "model=vgg1"]
        ),
        tmp_path / "fast",
    )
    plain = run(
        compose_config(
            [*SHORT, "trainer.precision=fp32", "trainer.channels_last=false", "model=vgg1"]
        ),
        tmp_path / "plain",
    )
    assert fast["status"] == plain["status"] == "completed"
    assert fast["final_train_loss"] == pytest.approx(plain["final_train_loss"], rel=0.1)
    assert fast["final_test_acc"] == pytest.approx(plain["final_test_acc"], abs=0.05)


def test_pinned_host_batches_train_like_device_resident_ones(tmp_path):
    args = [*SHORT, "augmentation=custom", "trainer.precision=fp32"]
    host = run(compose_config([*args, "dataset.placement=host"]), tmp_path / "host")
    device = run(compose_config([*args, "dataset.placement=device"]), tmp_path / "device")
    for key in ("final_train_loss", "final_test_acc"):
        assert host[key] == pytest.approx(device[key], rel=1e-4, abs=1e-6), key


def test_host_placed_batches_are_pinned_and_copied_without_blocking(monkeypatch):
    cfg = compose_config([*SHORT, "dataset.placement=host"])
    task = check_config(cfg).task.build(cfg, torch.device("cuda"))
    assert not task.data.train.x.is_cuda  # the images stay in host memory
    copies = []
    to = torch.Tensor.to

    def spy(self, *args, **kwargs):
        if not self.is_cuda and self.is_pinned():
            copies.append(kwargs.get("non_blocking"))
        return to(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to", spy)
    x, y = next(iter(task.train_batches(0)))
    assert x.is_cuda and y.is_cuda
    assert copies == [True, True]  # images and labels: pinned, non-blocking


def test_compiled_classification_step_matches_eager(tmp_path):
    args = [*SHORT, "trainer.precision=fp32"]
    compiled = run(compose_config([*args, "trainer.compile=true"]), tmp_path / "compiled")
    eager = run(compose_config([*args, "trainer.compile=false"]), tmp_path / "eager")
    assert compiled["compiled"] is True and eager["compiled"] is False
    assert compiled["final_train_loss"] == pytest.approx(eager["final_train_loss"], rel=1e-3)


def test_stacked_runs_on_the_gpu_match_separate_runs(tmp_path):
    args = [*CUDA, "activation=neuronwise_slope", "trainer.epochs=2", "trainer.precision=fp32"]
    combined = run(compose_config([*args, "seed=3", "trainer.stack=2"]), tmp_path / "job")
    assert combined["status"] == "completed"
    for seed in (3, 4):
        separate = run(
            compose_config([*args, f"seed={seed}"]), tmp_path / f"s{seed}", {"seed": str(seed)}
        )
        assert_same_run(read_metrics(tmp_path / "job" / f"seed={seed}"), separate)
