"""Kernel self-checks: a configuration that fails to compile, computes wrong values or
wrong gradients is caught on first use, logged once and served by the PyTorch reference
(activation.impl=auto), or refused with one line (activation.impl=triton).

Failures are injected into the real kernels run through Triton's interpreter.
"""

from __future__ import annotations

import logging

import pytest
import torch
from conftest import activation_config, compose_config

from adaptrun.activations import ActivationFactory, selfcheck
from adaptrun.activations import fused as fused_module
from adaptrun.activations.fused import triton_available
from adaptrun.core.errors import UserError

pytestmark = pytest.mark.skipif(
    not triton_available(), reason="Triton is not installed (CPU-only PyTorch build)"
)

# Where the kernels take their output / input gradient / first parameter gradient: after
# x2d and the kernel's parameters (slope: a and the PReLU weight; adact: the values).
PARAMS = {"slope": 2, "adact": 1, "apl": 2}


class Launch:
    """A kernel stand-in: ``kernel[grid](*args)`` runs the real one, then ``harm``."""

    def __init__(self, real, harm) -> None:
        self.real, self.harm, self.calls = real, harm, 0

    def __getitem__(self, grid):
        def launch(*args, **kwargs):
            self.calls += 1
            self.harm(self.real[grid], args, kwargs)

        return launch


def _raises(real, args, kwargs):
    raise RuntimeError("injected: PTX assembly failed")


def _scales(index):
    def harm(real, args, kwargs):
        real(*args, **kwargs)
        args[index].mul_(1.5)

    return harm


def _break(monkeypatch, kind: str, how: str) -> Launch:
    """Replace one of ``kind``'s kernels by a broken one; fresh verdicts for the test."""
    kernels = dict(fused_module._kernels())
    fwd, bwd = kernels[kind]
    n = PARAMS[kind]
    if how == "raises":
        fwd = broken = Launch(fwd, _raises)
    elif how == "output":
        fwd = broken = Launch(fwd, _scales(1 + n))
    elif how == "input gradient":
        bwd = broken = Launch(bwd, _scales(1 + n + 1))
    else:  # the first parameter's gradient
        bwd = broken = Launch(bwd, _scales(1 + n + 2))
    kernels[kind] = (fwd, bwd)
    monkeypatch.setattr(fused_module, "_kernels", lambda: kernels)
    return broken


@pytest.fixture(autouse=True)
def fresh_verdicts(monkeypatch):
    monkeypatch.setattr(selfcheck, "VERDICTS", {})
    selfcheck.begin_run()


@pytest.fixture
def as_if_on_cuda(monkeypatch):
    """impl=auto takes the kernels for these CPU tensors, as it would on a GPU."""
    monkeypatch.setattr(selfcheck, "use_triton", lambda impl, x: impl != "torch")


CASES = [
    ("slope", {"variant": "neuronwise", "base": "tanh"}, "slope[tanh] flat float32"),
    ("adact", {"variant": "adact"}, "adact flat float32"),
    ("apl", {"variant": "apl"}, "apl flat float32"),
]
HOWS = {
    "raises": "RuntimeError: injected: PTX assembly failed",
    "output": "output differs",
    "input gradient": "input gradient differs",
    "parameter gradient": "gradient of parameter 0 differs",
}


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "spec", "name"), CASES)
@pytest.mark.parametrize("how", list(HOWS))
def test_a_failing_configuration_falls_back_to_the_reference(
    monkeypatch, caplog, as_if_on_cuda, kind, spec, name, how
):
    broken = _break(monkeypatch, kind, how)
    module = ActivationFactory(activation_config(**spec, impl="auto"))((7,))
    x = torch.randn(5, 7, requires_grad=True)
    with caplog.at_level(logging.WARNING, logger="adaptrun.activations.selfcheck"):
        y = module(x)
        module(torch.randn(5, 7))
    torch.testing.assert_close(y, module.reference(x))  # the reference served it
    y.sum().backward()  # and its backward: no broken kernel on the way
    assert x.grad is not None and torch.isfinite(x.grad).all()
    (line,) = [r.getMessage() for r in caplog.records]  # logged once
    assert name in line and HOWS[how] in line and "PyTorch reference" in line
    assert broken.calls == 1  # checked once, then never launched again
    used = selfcheck.impl_used()
    assert list(used) == [name] and used[name].startswith(f"torch (self-check failed: {HOWS[how]}")
    assert selfcheck.outcome(used) == "fallback"


@pytest.mark.parametrize("how", ["raises", "parameter gradient"])
def test_impl_triton_turns_a_failed_self_check_into_one_line_error(monkeypatch, how):
    _break(monkeypatch, "slope", how)
    module = ActivationFactory(activation_config("layerwise", base="tanh", impl="triton"))((7,))
    with pytest.raises(UserError) as error:
        module(torch.randn(5, 7))
    message = str(error.value)
    assert "\n" not in message and message.startswith("activation.impl=triton: ")
    assert "slope[tanh] flat shared float32" in message and "activation.impl=auto" in message


def test_healthy_kernels_pass_and_are_used_per_layout_and_dtype(as_if_on_cuda):
    module = ActivationFactory(activation_config("neuronwise", base="gelu", impl="auto"))((4, 3, 3))
    x = torch.randn(2, 4, 3, 3)
    module(x)
    module(x.to(memory_format=torch.channels_last))
    module(torch.randn(6, 4, 3, 3))  # another batch size: the same configuration
    assert selfcheck.impl_used() == {"slope[gelu] flat float32": "triton"}  # per element
    channel = ActivationFactory(
        activation_config("neuronwise", base="gelu", granularity="channel", impl="auto")
    )((4, 3, 3))
    channel(x)
    channel(x.to(memory_format=torch.channels_last))
    channel(x.double())
    assert selfcheck.impl_used() == {
        "slope[gelu] flat float32": "triton",
        "slope[gelu] nchw float32": "triton",
        "slope[gelu] channels_last float32": "triton",
        "slope[gelu] nchw float64": "triton",
    }
    assert selfcheck.outcome(selfcheck.impl_used()) == "triton"
    assert selfcheck.outcome({}) == "torch"


def test_a_run_whose_explicit_kernel_fails_is_recorded_failed(monkeypatch, tmp_path):
    from conftest import read_metrics

    from adaptrun.runner.run import run

    _break(monkeypatch, "slope", "output")
    cfg = compose_config(
        ["activation=neuronwise_slope", "activation.impl=triton", "trainer.max_steps=2"]
    )
    with pytest.raises(UserError, match="failed its self-check"):
        run(cfg, tmp_path / "run")
    metrics = read_metrics(tmp_path / "run")
    assert metrics["status"] == "failed" and "failed its self-check" in metrics["error"]


@pytest.mark.slow
def test_doctor_checks_every_kernel_configuration_and_fails_on_a_broken_one(monkeypatch, capsys):
    from adaptrun.tools import doctor

    assert doctor.main(["--no-bench"]) == 0  # all pass (through the interpreter)
    healthy = capsys.readouterr().out
    assert "Kernel self-checks through Triton's interpreter: 92 of 92" in healthy
    assert "| torch | " + torch.__version__ in healthy
    monkeypatch.setattr(selfcheck, "VERDICTS", {})
    _break(monkeypatch, "apl", "input gradient")
    monkeypatch.setattr(doctor, "KERNELS", doctor.KERNELS[-3:])  # tanh per element, adact, apl
    assert doctor.main(["--no-bench"]) == 1
    broken = capsys.readouterr().out
    assert "8 of 14 configurations passed" in broken  # apl: 3 layouts x 2 dtypes failed
    assert "| apl channels_last bfloat16 | FAILED: input gradient differs" in broken


@pytest.mark.slow
def test_doctor_on_a_cpu_skips_the_kernels_and_prints_the_ratios_beside_targets(
    monkeypatch, capsys
):
    from adaptrun.tools import benchmarks, doctor

    monkeypatch.delenv("TRITON_INTERPRET")
    tiny = benchmarks.Sizes(4, repeat=1, images=16, workers=0, runs=2, networks=("3-VGG",))
    monkeypatch.setitem(doctor.SIZES, "cpu", tiny)
    assert doctor.main([]) == 0
    out = capsys.readouterr().out
    assert "Kernel self-checks: skipped (no CUDA device)" in out
    assert "device | CPU only" in out
    rows = [line.split(" | ") for line in out.splitlines() if "x | >= " in line]
    figures = [row[0].strip("| ") for row in rows]
    assert figures == [
        "layerwise slope vs fixed ReLU (3-VGG, torch)",
        "neuronwise, per channel vs fixed ReLU (3-VGG, torch)",
        "neuronwise, per element vs fixed ReLU (3-VGG, torch)",
        "adact (4 segments) vs fixed ReLU (3-VGG, torch)",
        "apl (4 hinges) vs fixed ReLU (3-VGG, torch)",
        "runner epoch vs bare loop",
        "2 stacked MLP runs vs sequential",
    ]
    assert [row[2] for row in rows] == [">= 0.95x"] * 3 + [">= 0.85x"] * 2 + [">= 0.9x", ">= 15x"]
    assert all(float(row[1].rstrip("x")) > 0 and "CUDA target" in row[3] for row in rows)


def test_doctor_without_kernels_to_check_prints_the_machine_and_says_why(monkeypatch, capsys):
    """The fast tier's look at adaptrun-doctor: on a CPU without Triton's interpreter it
    names the software and device, says the kernel checks were skipped and why, exits 0."""
    from adaptrun.tools import doctor

    monkeypatch.delenv("TRITON_INTERPRET")
    assert doctor.main(["--no-bench"]) == 0
    out = capsys.readouterr().out
    assert "| torch |" in out and "device | CPU only" in out
    assert "Kernel self-checks: skipped (no CUDA device)" in out
    assert "Headline ratios" not in out  # --no-bench
