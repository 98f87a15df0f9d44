"""The rational (Padé) family, added through the plugin contract: its own module and yaml.

It must start as the function it was fitted to, never have poles, differentiate
correctly, build in every model, stack exactly, and draw its curves in TensorBoard."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import assert_same_run, compose_config, events, read_metrics

from adaptrun.activations import ActivationFactory, SpecError
from adaptrun.activations.rational import Rational, RationalConfig
from adaptrun.models import build_model
from adaptrun.runner.run import run


def test_it_starts_close_to_leaky_relu_and_has_no_poles():
    act = ActivationFactory(RationalConfig())((5,))
    x = torch.linspace(-3, 3, 601).view(-1, 1).expand(-1, 5)
    error = (act(x) - F.leaky_relu(x, 0.01)).abs()
    assert error.mean().item() < 0.005  # PAU's degree (5, 4) fit on [-3, 3]
    assert error.max().item() < 0.04  # at the kink, which no rational function has
    far = torch.linspace(-1e3, 1e3, 20001).view(-1, 1).expand(-1, 5)
    assert torch.isfinite(act(far)).all()
    numerator, denominator = act.numerator, act.denominator
    assert numerator.shape == (6,) and denominator.shape == (4,)  # one set per layer


@pytest.mark.slow
@pytest.mark.parametrize("fit", ["tanh", "sigmoid", "gelu"])
def test_it_can_start_from_other_functions(fit):
    act = ActivationFactory(RationalConfig(fit=fit))((3,))
    x = torch.linspace(-3, 3, 301).view(-1, 1).expand(-1, 3)
    reference = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "gelu": F.gelu}[fit](x)
    assert (act(x) - reference).abs().max().item() < 0.02


def test_gradients_match_finite_differences():
    torch.manual_seed(0)
    act = ActivationFactory(RationalConfig(granularity="channel"))((3, 2, 2)).double()
    with torch.no_grad():
        act.numerator.add_(torch.randn_like(act.numerator) * 0.1)
        act.denominator.add_(torch.randn_like(act.denominator) * 0.1)
    x = torch.randn(4, 3, 2, 2, dtype=torch.float64) + 0.05  # away from |x|'s kink at 0

    def f(inp: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(act, {"numerator": a, "denominator": b}, (inp,))

    inputs = (x.requires_grad_(), act.numerator.detach(), act.denominator.detach())
    assert torch.autograd.gradcheck(f, tuple(t.requires_grad_() for t in inputs))


@pytest.mark.parametrize(
    ("granularity", "shape", "expected"),
    [
        ("layer", (4, 5, 5), (6,)),
        ("channel", (4, 5, 5), (6, 4, 1, 1)),
        ("element", (4, 5, 5), (6, 4, 5, 5)),
        ("channel", (7,), (6, 7)),
    ],
)
def test_one_coefficient_set_per_layer_channel_or_element(granularity, shape, expected):
    act = ActivationFactory(RationalConfig(granularity=granularity))(shape)
    assert isinstance(act, Rational)
    assert tuple(act.numerator.shape) == expected
    x = torch.randn(2, *shape)
    assert act(x).shape == x.shape


@pytest.mark.parametrize(
    ("field", "value"),
    [("numerator", 0), ("denominator", -1), ("fit", "swish"), ("fit_range", [1.0, -1.0])],
)
def test_impossible_settings_name_their_field(field, value):
    with pytest.raises(SpecError) as info:
        ActivationFactory(RationalConfig(**{field: value}))
    assert info.value.field == field


MODELS = {
    "mlp": ({"name": "mlp", "hidden_layers": 2, "width": 8}, (1, 8, 8)),
    "mlp1": ({"name": "mlp1", "hidden": 6}, (1, 8, 8)),
    "vgg": ({"name": "vgg", "blocks": 2, "filters": [4, 8], "dense": 16}, (3, 16, 16)),
    "lenet": ({"name": "lenet", "dropout": 0.5}, (1, 16, 16)),
    "preact_resnet18": ({"name": "preact_resnet18"}, (3, 8, 8)),
    "vgg11": (
        {
            "name": "vgg11",
            "pretrained": False,
            "download": False,
            "adaptive_layers": 2,
            "freeze_backbone": False,
            "backbone_lr_mult": 1.0,
            "input_size": None,
        },
        (3, 32, 32),
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MODELS))
def test_it_trains_in_every_model(name):
    torch.manual_seed(0)
    cfg, shape = MODELS[name]
    model = build_model(cfg, shape, 10, ActivationFactory(RationalConfig()))
    sites = [m for m in model.modules() if isinstance(m, Rational)]
    assert sites
    before = [s.numerator.detach().clone() for s in sites]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = F.cross_entropy(model(torch.randn(4, *shape)), torch.arange(4))
    loss.backward()
    optimizer.step()
    assert all(not torch.equal(b, s.numerator) for b, s in zip(before, sites, strict=True))


QUICK = ["activation=rational", "trainer.epochs=2"]


@pytest.mark.slow
def test_adaptrun_activation_rational_runs_and_draws_its_curves(tmp_path):
    metrics = run(compose_config(QUICK), tmp_path)
    assert metrics["status"] == "completed"
    assert metrics["final_test_acc"] > 0.5
    assert metrics["params"]["activation"] == 2 * (6 + 4)  # two hidden layers, one set each
    assert metrics["hparams"]["activation.numerator"] == 5
    assert metrics["hparams"]["activation.fit"] == "leaky_relu"
    images = events(tmp_path).Tags()["images"]
    assert "figures/activations" in images


@pytest.mark.slow
def test_stacked_rational_runs_match_separate_runs(tmp_path):
    combined = run(compose_config([*QUICK, "seed=3", "trainer.stack=2"]), tmp_path / "job")
    assert combined["status"] == "completed"
    for seed in (3, 4):
        overrides = {"seed": str(seed)}  # as the CLI records `adaptrun ... seed=<k>`
        separate = run(compose_config([*QUICK, f"seed={seed}"]), tmp_path / str(seed), overrides)
        assert_same_run(read_metrics(tmp_path / "job" / f"seed={seed}"), separate)
