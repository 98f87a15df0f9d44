"""AdAct and APL: starting functions, formulas, gradients, parameter counts, penalties."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from adaptrun.activations import (
    APL,
    ActivationFactory,
    AdAct,
    AdActConfig,
    APLConfig,
    FixedConfig,
    SpecError,
    activation_parameters,
    model_penalty,
)
from adaptrun.models import MLP, VGG

SITES = {
    "dense": ((6,), "element"),
    "channel": ((3, 4, 5), "channel"),
    "element": ((3, 4, 5), "element"),
}
INITS = [("relu", F.relu), ("leaky_relu", lambda x: F.leaky_relu(x, 0.2))]


@pytest.mark.parametrize("site", sorted(SITES))
@pytest.mark.parametrize(("init", "reference"), INITS)
@pytest.mark.parametrize("hinges", [3, 5, 9])
def test_adact_starts_as_its_init_function_inside_and_outside_the_hinges(
    site, init, reference, hinges
):
    shape, granularity = SITES[site]
    spec = AdActConfig(
        init=init,
        negative_slope=0.2,
        hinges=hinges,
        hinge_range=(-1.5, 1.5),
        granularity=granularity,
    )
    act = ActivationFactory(spec)(shape)
    x = torch.randn(5, *shape) * 20  # mostly far outside [-1.5, 1.5]
    x[0] = torch.linspace(-1.5, 1.5, x[0].numel()).view(shape)  # and across the hinges
    torch.testing.assert_close(act(x), reference(x), rtol=1e-6, atol=1e-5)


def _away_from(x: torch.Tensor, kinks: torch.Tensor, gap: float = 0.05) -> torch.Tensor:
    """Push inputs at least ``gap`` away from every kink so differences are smooth."""
    for k in kinks.flatten().tolist():
        near = (x - k).abs() < gap
        x = torch.where(near, x + 2 * gap * torch.sign(x - k + 1e-9), x)
    return x


def test_adact_interpolates_extrapolates_and_has_finite_difference_gradients():
    torch.manual_seed(0)
    act = AdAct((4,), hinges=5, hinge_range=(-2, 2)).double()
    with torch.no_grad():
        act.values.copy_(torch.randn(4, 5, dtype=torch.float64))
    x = _away_from(torch.randn(7, 4, dtype=torch.float64) * 2.5, act.positions)
    hinges, values = act.positions.double().numpy(), act.values.detach().numpy()
    expected = torch.stack(
        [torch.from_numpy(np.interp(x[:, u].numpy(), hinges, values[u])) for u in range(4)], 1
    )
    inside = x.abs() <= 2
    torch.testing.assert_close(act(x)[inside], expected[inside])
    right = (act.values[:, 4] - act.values[:, 3]).detach()  # the last segment's slope
    far = torch.full((1, 4), 5.0, dtype=torch.float64)
    torch.testing.assert_close(act(far)[0], act.values[:, 4].detach() + 3 * right)
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda inp, v: functional_call(act, {"values": v}, (inp,)), (x, act.values)
    )


def test_apl_formula_and_finite_difference_gradients():
    torch.manual_seed(1)
    act = APL((3,), segments=4, decay=0.0).double()
    x = torch.randn(6, 3, dtype=torch.float64) * 2
    x = _away_from(x, torch.cat([torch.zeros(1, dtype=torch.float64), act.b.detach().flatten()]))
    direct = torch.relu(x) + sum(
        act.a[:, s] * torch.clamp(act.b[:, s] - x, min=0) for s in range(4)
    )
    torch.testing.assert_close(act(x), direct)
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda inp, a, b: functional_call(act, {"a": a, "b": b}, (inp,)), (x, act.a, act.b)
    )


def test_apl_initialisation_and_penalty():
    act = APL((100,), segments=5, decay=0.01)
    assert act.a.abs().max() <= 0.5 / 5
    assert 0.35 < act.b.std().item() < 0.65
    model = torch.nn.Sequential(torch.nn.Linear(2, 100), act)
    expected = 0.5 * 0.01 * (act.a.pow(2).sum() + act.b.pow(2).sum())
    torch.testing.assert_close(model_penalty(model), expected)


def _mlp(spec: object) -> MLP:
    return MLP((4,), [6, 7], 3, ActivationFactory(spec))


def test_parameter_counts():
    fixed = sum(p.numel() for p in _mlp(FixedConfig()).parameters())
    adact = _mlp(AdActConfig(hinges=5))
    apl = _mlp(APLConfig(segments=3))
    assert sum(p.numel() for p in adact.parameters()) - fixed == (6 + 7) * 5
    assert sum(p.numel() for p in apl.parameters()) - fixed == (6 + 7) * 3 * 2
    assert sum(p.numel() for p in activation_parameters(apl)) == (6 + 7) * 3 * 2
    spec = AdActConfig(granularity="channel")
    vgg = VGG((3, 8, 8), [4], 5, 10, ActivationFactory(spec))
    assert sum(p.numel() for p in activation_parameters(vgg)) == (4 + 4 + 5) * 5


def test_adact_refuses_hinges_that_miss_zero():
    with pytest.raises(SpecError) as info:
        ActivationFactory(AdActConfig(hinges=4, hinge_range=(-2, 2)))
    assert info.value.field == "hinges"
    with pytest.raises(SpecError) as info:
        ActivationFactory(AdActConfig(init="tanh"))
    assert info.value.field == "init"


def test_adact_finds_its_zero_hinge_despite_linspace_rounding():
    # linspace(-2, 2, 7)[3] is 1e-7, not 0: the hinge at 0 must still be found
    module = AdAct((3,), hinges=7, hinge_range=(-2.0, 2.0))
    x = torch.linspace(-3, 3, 61).view(-1, 1).expand(-1, 3)
    torch.testing.assert_close(module(x), torch.relu(x))
