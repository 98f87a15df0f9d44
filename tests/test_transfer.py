"""The activation-site converter and the torchvision transfer models."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from adaptrun.activations import (
    ActivationFactory,
    AdAct,
    AdActConfig,
    SlopeActivation,
    SlopeConfig,
)
from adaptrun.core.errors import UserError
from adaptrun.models import build_model
from adaptrun.models.convert import activation_sites, convert_activations
from adaptrun.runner.run import run
from adaptrun.training.optim import build_optimizer

NEURONWISE = SlopeConfig(variant="neuronwise", granularity="channel", n=2.0)
ADACT = AdActConfig()


@pytest.mark.parametrize(
    ("constructor", "sites"), [(torchvision.models.resnet18, 17), (torchvision.models.vgg11, 10)]
)
@pytest.mark.slow
@pytest.mark.parametrize("spec", [NEURONWISE, ADACT], ids=["neuronwise", "adact"])
def test_every_call_site_gets_its_own_module_and_outputs_are_unchanged(constructor, sites, spec):
    torch.manual_seed(0)
    model = constructor(num_classes=10).eval()
    x = torch.randn(2, 3, 32, 32)
    converted = convert_activations(model, ActivationFactory(spec), x)
    kind = SlopeActivation if isinstance(spec, SlopeConfig) else AdAct
    modules = [m for m in converted.modules() if isinstance(m, kind)]
    assert len(modules) == sites and len({id(m) for m in modules}) == sites
    assert activation_sites(converted) == []  # no original ReLU call left in the graph
    torch.testing.assert_close(converted(x), model(x), rtol=1e-5, atol=1e-5)


def test_last_k_sites_and_functional_calls():
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(3, 4), nn.Linear(4, 5)

        def forward(self, x):
            return F.relu(self.b(F.relu(self.a(x))))

    converted = convert_activations(Functional(), ActivationFactory(NEURONWISE), torch.randn(2, 3))
    slopes = [m for m in converted.modules() if isinstance(m, SlopeActivation)]
    assert [tuple(m.a.shape) for m in slopes] == [(4,), (5,)]
    model = torchvision.models.resnet18(num_classes=10).eval()
    last2 = convert_activations(model, ActivationFactory(ADACT), torch.randn(2, 3, 32, 32), last=2)
    adacts = [m for m in last2.modules() if isinstance(m, AdAct)]
    assert [m.units for m in adacts] == [(512, 1, 1), (512, 1, 1)]  # the last block's two sites
    assert len(activation_sites(last2)) == 15  # the earlier sites keep their ReLU


def _cfg(compose_cfg, *extra):
    return compose_cfg(["model=resnet18", "dataset=cifar10", *extra]).model


def test_pretrained_weights_come_from_the_hub_cache(compose_cfg, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    torch.manual_seed(5)
    reference = torchvision.models.resnet18()
    (tmp_path / "checkpoints").mkdir()
    torch.save(reference.state_dict(), tmp_path / "checkpoints" / "resnet18-f37072fd.pth")
    model = build_model(
        _cfg(compose_cfg, "model.download=false"), (3, 32, 32), 10, ActivationFactory(ADACT)
    )
    torch.testing.assert_close(model.net.conv1.weight, reference.conv1.weight)
    deep = model.net.get_submodule("layer4.1.conv2").weight
    torch.testing.assert_close(deep, reference.layer4[1].conv2.weight)
    assert model.net.fc.out_features == 10


def test_missing_weights_say_which_file_goes_where(compose_cfg, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(UserError) as info:
        build_model(
            _cfg(compose_cfg, "model.download=false"), (3, 32, 32), 10, ActivationFactory(ADACT)
        )
    message = str(info.value)
    assert f"{tmp_path}/checkpoints/resnet18-f37072fd.pth" in message
    assert "model.pretrained=false" in message and "\n" not in message


def test_freezing_and_backbone_learning_rate(compose_cfg):
    cfg = _cfg(compose_cfg, "model.pretrained=false", "model.backbone_lr_mult=0.1")
    model = build_model(cfg, (1, 16, 16), 10, ActivationFactory(ADACT))  # grey, resized below
    groups = build_optimizer(
        model, {"name": "sgd", "lr": 0.01, "momentum": 0.9, "nesterov": False, "weight_decay": 0.0}
    )
    slow = [g for g in groups.param_groups if g["lr"] == pytest.approx(0.001)]
    assert len(slow) == 1
    assert {id(p) for p in slow[0]["params"]} == {id(p) for p in model.backbone_parameters()}
    assert all(g["lr"] == 0.01 for g in groups.param_groups if g is not slow[0])
    frozen = build_model(
        _cfg(compose_cfg, "model.pretrained=false", "model.freeze_backbone=true"),
        (3, 32, 32),
        10,
        ActivationFactory(ADACT),
    )
    trainable = {id(p) for p in frozen.parameters() if p.requires_grad}
    assert trainable == {
        id(p)
        for p in [
            *frozen.head_parameters(),
            *[m.values for m in frozen.modules() if isinstance(m, AdAct)],
        ]
    }


@pytest.mark.slow
def test_transfer_run_on_grey_small_images(compose_cfg, tmp_path):
    cfg = compose_cfg(
        [
            "model=resnet18",
            "model.pretrained=false",
            "model.input_size=32",
            "activation=adact",
            "trainer.max_steps=3",
            "trainer.batch_size=16",
        ]
    )
    metrics = run(cfg, tmp_path)
    assert metrics["status"] == "completed" and metrics["steps"] == 3
    assert metrics["params"]["activation"] == 2 * 512 * 5
