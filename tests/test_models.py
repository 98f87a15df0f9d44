"""The paper's networks on every benchmark's image shape, with every activation variant."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from adaptrun.activations import (
    ActivationFactory,
    FixedConfig,
    SlopeActivation,
    SlopeConfig,
    model_penalty,
)
from adaptrun.models import build_model

SHAPES = {"mnist_family": (1, 28, 28), "cifar_svhn": (3, 32, 32), "semeion": (1, 16, 16)}
VARIANTS = [
    FixedConfig(),
    SlopeConfig(variant="global", slope_recovery=1.0, n=2),
    SlopeConfig(variant="layerwise", slope_recovery=1.0, n=2),
    SlopeConfig(variant="neuronwise", granularity="channel", slope_recovery=1.0, n=2),
    SlopeConfig(variant="neuronwise", granularity="element", slope_recovery=1.0, n=2),
]
MODELS = {
    "lenet": {"name": "lenet", "dropout": 0.5},
    "preact_resnet18": {"name": "preact_resnet18"},
}


@pytest.mark.parametrize("model_name", sorted(MODELS))
@pytest.mark.parametrize("shape_name", sorted(SHAPES))
@pytest.mark.parametrize(
    "spec",
    VARIANTS,
    ids=lambda s: f"{getattr(s, 'variant', 'fixed')}-{getattr(s, 'granularity', '')}",
)
@pytest.mark.slow
def test_trains_a_few_steps(model_name, shape_name, spec):
    torch.manual_seed(0)
    shape = SHAPES[shape_name]
    model = build_model(MODELS[model_name], shape, 10, ActivationFactory(spec))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(4, *shape), torch.arange(4)
    before = [p.detach().clone() for p in model.parameters()]
    for _ in range(2):
        loss = F.cross_entropy(model(x), y) + model_penalty(model)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        assert torch.isfinite(loss)
    moved = [not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True)]
    assert all(moved)  # every parameter, slopes included, got a gradient
    if isinstance(spec, SlopeConfig):
        assert any(isinstance(m, SlopeActivation) for m in model.modules())


@pytest.mark.parametrize("model_name", sorted(MODELS))
@pytest.mark.parametrize(
    "spec",
    VARIANTS[1:],
    ids=lambda s: f"{getattr(s, 'variant', 'fixed')}-{getattr(s, 'granularity', '')}",
)
@pytest.mark.slow
def test_adaptive_network_at_init_equals_its_fixed_twin(model_name, spec):
    shape = SHAPES["cifar_svhn"]
    torch.manual_seed(3)
    fixed = build_model(MODELS[model_name], shape, 10, ActivationFactory(VARIANTS[0])).eval()
    adaptive = build_model(MODELS[model_name], shape, 10, ActivationFactory(spec)).eval()
    # Same weights: the adaptive model has extra slope parameters only.
    adaptive.load_state_dict(fixed.state_dict(), strict=False)
    x = torch.randn(3, *shape)
    torch.testing.assert_close(adaptive(x), fixed(x), rtol=1e-5, atol=1e-5)


def test_preact_slopes_sit_after_batchnorm_with_n_applied():
    spec = SlopeConfig(variant="layerwise", n=2.0)
    model = build_model(MODELS["preact_resnet18"], (3, 32, 32), 10, ActivationFactory(spec))
    sites = [m for m in model.modules() if isinstance(m, SlopeActivation)]
    assert len(sites) == 2 * 8 + 1  # two per block, eight blocks, plus the final one
    assert all(s.n == 2.0 and torch.allclose(s.slope(), torch.tensor(1.0)) for s in sites)


def test_lenet_element_slopes_have_the_post_pool_shapes():
    spec = SlopeConfig(variant="neuronwise", granularity="element")
    model = build_model(MODELS["lenet"], (1, 28, 28), 10, ActivationFactory(spec))
    assert [tuple(m.a.shape) for m in model.modules() if isinstance(m, SlopeActivation)] == [
        (64, 12, 12),
        (64, 4, 4),
        (1024,),
    ]
