"""The fused Triton kernels against the PyTorch reference modules: outputs and every
gradient, random inputs, odd sizes, non-contiguous and channels-last inputs.

Without a GPU they run through Triton's interpreter (TRITON_INTERPRET=1, which
conftest.py sets before anything imports Triton); without Triton at all they are
skipped, saying so.
"""

from __future__ import annotations

import pytest
import torch
from conftest import BASES, DEVICE, compare, twins

from adaptrun.activations import APL, ActivationFactory, AdAct, SlopeConfig
from adaptrun.activations.fused import triton_available, use_triton
from adaptrun.activations.slope import SlopeActivation

pytestmark = pytest.mark.skipif(
    not triton_available(), reason="Triton is not installed (CPU-only PyTorch build)"
)

# (input shape, factory shape, granularity): dense layers, conv channel / element, odd sizes
LAYOUTS = [
    ((5, 7), (7,), "element"),
    ((3, 5, 7, 9), (5, 7, 9), "channel"),
    ((3, 5, 7, 9), (5, 7, 9), "element"),
    ((2, 33, 3, 3), (33, 3, 3), "channel"),
]


@pytest.mark.slow
@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize("variant", ["layerwise", "neuronwise"])
@pytest.mark.parametrize(("x_shape", "shape", "granularity"), LAYOUTS)
def test_slope_kernels_match_the_reference(base, variant, x_shape, shape, granularity):
    ref, fused = twins(
        {"variant": variant, "base": base, "n": 2, "granularity": granularity}, shape
    )
    assert isinstance(fused, SlopeActivation) and fused.base_name == base
    compare(ref, fused, torch.randn(*x_shape, device=DEVICE) * 2)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["adact", "apl"])
@pytest.mark.parametrize(("x_shape", "shape", "granularity"), LAYOUTS)
@pytest.mark.parametrize("count", [3, 7])
def test_piecewise_kernels_match_the_reference(variant, x_shape, shape, granularity, count):
    size = {"adact": "hinges", "apl": "segments"}[variant]
    spec = {"variant": variant, "granularity": granularity, size: count}
    ref, fused = twins(spec, shape)
    assert isinstance(fused, AdAct | APL)
    compare(ref, fused, torch.randn(*x_shape, device=DEVICE) * 3)  # beyond the end hinges


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["neuronwise", "adact", "apl"])
def test_kernels_take_non_contiguous_and_channels_last_inputs(variant):
    spec = {"variant": variant, "granularity": "channel"}
    if variant == "neuronwise":
        spec["base"] = "tanh"
    ref, fused = twins(spec, (6, 5, 4))
    wide = torch.randn(2, 6, 5, 8, device=DEVICE)
    compare(ref, fused, wide[..., ::2])  # a strided view
    channels_last = torch.randn(2, 6, 5, 4, device=DEVICE).to(memory_format=torch.channels_last)
    compare(ref, fused, channels_last)
    assert fused(channels_last).is_contiguous(memory_format=torch.channels_last)


def test_global_slope_shared_by_two_call_sites_gets_both_gradients():
    spec = SlopeConfig(variant="global", base="silu", n=3, impl="triton")
    factory = ActivationFactory(spec)
    first, second = factory((4,)), factory((4,))
    assert first.a is second.a
    x = torch.randn(5, 4, device=DEVICE)
    first.to(DEVICE)
    (second(first(x)).sum()).backward()
    fused_grad = first.a.grad.clone()
    first.a.grad = None
    first.impl = second.impl = "torch"
    (second(first(x)).sum()).backward()
    torch.testing.assert_close(fused_grad, first.a.grad, atol=1e-5, rtol=1e-4)


def test_bf16_inputs_compute_in_fp32_and_store_bf16():
    ref, fused = twins({"variant": "neuronwise", "base": "gelu"}, (16,))
    x = torch.randn(8, 16, device=DEVICE, dtype=torch.bfloat16)
    y = fused(x)
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), ref(x.float()), atol=2e-2, rtol=1e-2)


def test_auto_uses_the_reference_on_cpu_and_inside_torch_func():
    x = torch.zeros(2, 3)
    assert not use_triton("auto", x)
    assert use_triton("triton", x)
    seen = []
    torch.func.vmap(lambda t: seen.append(use_triton("triton", t)) or t)(torch.zeros(2, 3))
    assert seen == [False]  # vmapped (stacked runs): no batching rule for the kernels


@pytest.mark.slow
@pytest.mark.parametrize("activation", ["neuronwise_slope", "adact"])
def test_a_run_with_the_kernels_matches_a_run_with_the_reference(activation, tmp_path):
    from conftest import compose_config

    from adaptrun.runner.run import run

    args = [f"activation={activation}", "trainer.max_steps=15", "trainer.epochs=1"]
    fused = run(compose_config([*args, "activation.impl=triton"]), tmp_path / "triton")
    ref = run(compose_config([*args, "activation.impl=torch"]), tmp_path / "torch")
    for key in ("final_train_loss", "final_test_loss", "final_test_acc"):
        assert fused[key] == pytest.approx(ref[key], rel=1e-4, abs=1e-6), key
    kernel = (
        "slope[relu]" if activation == "neuronwise_slope" else "adact"
    )  # relu: the default base
    assert fused["impl_used"] == {f"{kernel} flat float32": "triton"}  # self-checked, used
    assert fused["hparams"]["activation.impl_used"] == "triton"
    assert ref["impl_used"] == {} and ref["hparams"]["activation.impl_used"] == "torch"


def test_a_second_derivative_through_the_kernels_raises_instead_of_lying():
    _, fused = twins({"variant": "neuronwise", "base": "tanh"}, (4,))
    x = torch.randn(3, 4, device=DEVICE, requires_grad=True)
    (dx,) = torch.autograd.grad(fused(x).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match=r"once_differentiable|does not require grad"):
        dx.sum().backward()


def test_burgers_uses_the_reference_modules_and_refuses_triton(tmp_path):
    from conftest import compose_config

    from adaptrun.config.check import check_activation, check_config
    from adaptrun.core.errors import ConfigError
    from adaptrun.tasks import TASKS

    cfg = compose_config(["experiment=jagtap_burgers", "activation=neuronwise_slope"])
    burgers, function = TASKS["burgers"], TASKS["function"]
    assert check_activation(cfg.activation, burgers).config.impl == "torch"  # auto -> torch
    assert check_activation(cfg.activation, function).config.impl == "auto"
    with pytest.raises(ConfigError, match="differentiates the network twice"):
        check_config(
            compose_config(
                [
                    "experiment=jagtap_burgers",
                    "activation=neuronwise_slope",
                    "activation.impl=triton",
                ]
            )
        )
