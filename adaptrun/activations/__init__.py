"""Adaptive activation functions, usable from any PyTorch code (no Hydra needed).

from adaptrun.activations import ActivationFactory, SlopeConfig, model_penalty
act = ActivationFactory(SlopeConfig(variant="neuronwise", base="tanh", n=10,
                                    slope_recovery=1.0))
layer = nn.Sequential(nn.Linear(2, 50), act((50,)))
loss = task_loss + model_penalty(model)

Every module of this package that registers a family in ``FAMILIES`` is imported here,
so a new family is one new module (and its conf/activation yaml).
"""

from adaptrun.activations.bases import BASES, FixedConfig, Sin, make_base
from adaptrun.activations.family import (
    FAMILIES,
    GRANULARITIES,
    ActivationConfig,
    ActivationFactory,
    ActivationFamily,
    Capabilities,
    SpecError,
    activation_modules,
    activation_parameters,
    family_of,
    inert_settings,
)
from adaptrun.activations.piecewise import APL, AdAct, AdActConfig, APLConfig
from adaptrun.activations.recovery import NORMALIZATIONS, model_penalty, slope_recovery
from adaptrun.activations.slope import VARIANTS, SlopeActivation, SlopeConfig
from adaptrun.core.registry import discover

discover(__name__)

__all__ = [
    "APL",
    "BASES",
    "FAMILIES",
    "GRANULARITIES",
    "NORMALIZATIONS",
    "VARIANTS",
    "APLConfig",
    "ActivationConfig",
    "ActivationFactory",
    "ActivationFamily",
    "AdAct",
    "AdActConfig",
    "Capabilities",
    "FixedConfig",
    "Sin",
    "SlopeActivation",
    "SlopeConfig",
    "SpecError",
    "activation_modules",
    "activation_parameters",
    "family_of",
    "inert_settings",
    "make_base",
    "model_penalty",
    "slope_recovery",
]
