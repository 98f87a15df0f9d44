"""The activation library on its own: fixed twins, gradients, S(a), parameter counts."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import activation_config
from torch import nn

from adaptrun.activations import (
    BASES,
    ActivationFactory,
    FixedConfig,
    SlopeActivation,
    SlopeConfig,
    SpecError,
    activation_parameters,
    make_base,
    model_penalty,
    slope_recovery,
)
from adaptrun.models import MLP, VGG

ADAPTIVE = ("global", "layerwise", "neuronwise")
SHAPES = {"dense": (7,), "conv_channel": (3, 5, 4), "conv_element": (3, 5, 4)}


@pytest.mark.parametrize("base", sorted(BASES))
@pytest.mark.parametrize("variant", ADAPTIVE)
@pytest.mark.parametrize("site", sorted(SHAPES))
@pytest.mark.parametrize("n", [1.0, 2.0, 10.0])
def test_adaptive_at_init_equals_fixed_base(base, variant, site, n):
    torch.manual_seed(0)
    granularity = "channel" if site == "conv_channel" else "element"
    spec = activation_config(variant, base=base, n=n, granularity=granularity)
    adaptive = ActivationFactory(spec)(SHAPES[site])
    fixed = make_base(base)
    x = torch.randn(6, *SHAPES[site]) * 3
    assert isinstance(adaptive, SlopeActivation)
    torch.testing.assert_close(adaptive(x), fixed(x), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(adaptive.slope(), torch.ones_like(adaptive.a))


@pytest.mark.parametrize("base", sorted(BASES))
def test_fixed_variant_is_the_plain_base(base):
    module = ActivationFactory(FixedConfig(base=base))((4,))
    assert type(module) is type(make_base(base))
    assert not isinstance(module, SlopeActivation)


@pytest.mark.parametrize("base", sorted(BASES))
@pytest.mark.parametrize("variant", ADAPTIVE)
def test_gradient_wrt_slope_and_input_matches_finite_differences(base, variant):
    torch.manual_seed(1)
    spec = activation_config(variant, base=base, n=2.0)
    act = ActivationFactory(spec)((5,)).double()
    with torch.no_grad():
        act.a.add_(torch.rand_like(act.a) * 0.5)  # move away from the initial point
    # Keep inputs away from the kinks of relu-like bases so differences are smooth.
    x = torch.randn(4, 5, dtype=torch.float64)
    x = x + 0.3 * torch.sign(x)
    x.requires_grad_(True)

    def f(inp, a):
        return act.base((act.n * a) * inp)

    assert torch.autograd.gradcheck(f, (x, act.a), eps=1e-6, atol=1e-6)


def test_slope_recovery_matches_hand_computation():
    a1, a2, a3 = 0.3, -0.2, 1.1
    layerwise = [torch.tensor(a1), torch.tensor(a2), torch.tensor(a3)]
    mean = 1 / ((math.exp(a1) + math.exp(a2) + math.exp(a3)) / 3)
    total = 1 / (math.exp(a1) + math.exp(a2) + math.exp(a3))
    assert slope_recovery(layerwise, "mean").item() == pytest.approx(mean, rel=1e-6)
    assert slope_recovery(layerwise, "sum").item() == pytest.approx(total, rel=1e-6)

    neuronwise = [torch.tensor([0.1, 0.5]), torch.tensor([1.0, 2.0, 3.0])]
    expected = 1 / ((math.exp(0.3) + math.exp(2.0)) / 2)
    assert slope_recovery(neuronwise, "mean").item() == pytest.approx(expected, rel=1e-6)
    assert slope_recovery(neuronwise, "sum").item() == pytest.approx(expected / 2, rel=1e-6)


def _mlp(variant: str, widths=(5, 6, 7), **kw) -> MLP:
    spec = activation_config(variant, base="tanh", n=10.0, **kw)
    return MLP((1, 2, 2), widths, 3, ActivationFactory(spec))


@pytest.mark.parametrize("normalization", ["mean", "sum"])
def test_model_penalty_is_weight_times_s_of_a(normalization):
    model = _mlp("layerwise", slope_recovery=0.5, normalization=normalization)
    with torch.no_grad():
        for value, a in zip([0.2, 0.4, 0.8], activation_parameters(model), strict=True):
            a.fill_(value)
    terms = [math.exp(0.2), math.exp(0.4), math.exp(0.8)]
    denom = sum(terms) / 3 if normalization == "mean" else sum(terms)
    assert model_penalty(model).item() == pytest.approx(0.5 / denom, rel=1e-6)


def test_global_penalty_counts_the_shared_slope_once():
    model = _mlp("global", slope_recovery=1.0, normalization="sum")
    (a,) = activation_parameters(model)
    with torch.no_grad():
        a.fill_(0.7)
    assert model_penalty(model).item() == pytest.approx(math.exp(-0.7), rel=1e-6)


def test_no_penalty_without_slope_recovery():
    for variant in ("fixed", *ADAPTIVE):
        assert model_penalty(_mlp(variant)).item() == 0.0


def _extra_params(model: nn.Module, reference: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters()) - sum(
        p.numel() for p in reference.parameters()
    )


def test_mlp_extra_parameter_counts():
    fixed = _mlp("fixed")
    assert _extra_params(_mlp("global"), fixed) == 1
    assert _extra_params(_mlp("layerwise"), fixed) == 3  # D - 1 hidden layers
    assert _extra_params(_mlp("neuronwise"), fixed) == 5 + 6 + 7  # sum of hidden widths


def _vgg(variant: str, granularity: str | None = None) -> VGG:
    spec = activation_config(variant, **({"granularity": granularity} if granularity else {}))
    return VGG((3, 8, 8), [4, 6], 5, 10, ActivationFactory(spec))


def test_vgg_extra_parameter_counts_per_granularity():
    fixed = _vgg("fixed")
    assert _extra_params(_vgg("global"), fixed) == 1
    assert _extra_params(_vgg("layerwise"), fixed) == 5  # 2 convs per block x 2 blocks + dense
    assert _extra_params(_vgg("neuronwise", "channel"), fixed) == 4 + 4 + 6 + 6 + 5
    element = 4 * 8 * 8 * 2 + 6 * 4 * 4 * 2 + 5
    assert _extra_params(_vgg("neuronwise", "element"), fixed) == element


def test_global_variant_shares_one_parameter_that_every_site_trains():
    torch.manual_seed(0)
    shared = _mlp("global")
    sites = [m for m in shared.modules() if isinstance(m, SlopeActivation)]
    assert len(sites) == 3
    assert all(site.a is sites[0].a for site in sites)
    assert len(activation_parameters(shared)) == 1
    # The same network with one slope per layer, all at the shared value: the shared
    # slope's gradient must be the sum of the three per-layer gradients.
    separate = _mlp("layerwise")
    separate.load_state_dict(shared.state_dict())
    x = torch.randn(8, 1, 2, 2)
    shared(x).pow(2).sum().backward()
    separate(x).pow(2).sum().backward()
    per_layer = [a.grad for a in activation_parameters(separate)]
    assert len(per_layer) == 3
    torch.testing.assert_close(sites[0].a.grad, sum(per_layer))
    assert all(g.abs() > 0 for g in per_layer)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"n": 0.5}, "n"),
        ({"base": "swish"}, "base"),
        ({"variant": "pixelwise"}, "variant"),
        ({"granularity": "row"}, "granularity"),
        ({"slope_recovery": -1.0}, "slope_recovery"),
        ({"normalization": "max"}, "normalization"),
    ],
)
def test_spec_rejects_impossible_values_naming_the_field(kwargs, field):
    with pytest.raises(SpecError) as info:
        ActivationFactory(SlopeConfig(**kwargs))
    assert info.value.field == field
