"""Adaptive activation functions, usable from any PyTorch code (no Hydra needed).

from adaptrun.activations import ActivationFactory, ActivationSpec, model_penalty
act = ActivationFactory(ActivationSpec(variant="neuronwise", base="tanh", n=10,
                                       slope_recovery=1.0))
layer = nn.Sequential(nn.Linear(2, 50), act((50,)))
loss = task_loss + model_penalty(model)
"""

from adaptrun.activations.bases import BASES, Sin, make_base
from adaptrun.activations.factory import (
    GRANULARITIES,
    PIECEWISE,
    VARIANTS,
    ActivationFactory,
    ActivationSpec,
    SpecError,
    activation_parameters,
)
from adaptrun.activations.piecewise import APL, AdAct
from adaptrun.activations.recovery import NORMALIZATIONS, model_penalty, slope_recovery
from adaptrun.activations.slope import SlopeActivation

__all__ = [
    "APL",
    "BASES",
    "GRANULARITIES",
    "NORMALIZATIONS",
    "PIECEWISE",
    "VARIANTS",
    "ActivationFactory",
    "ActivationSpec",
    "AdAct",
    "Sin",
    "SlopeActivation",
    "SpecError",
    "activation_parameters",
    "make_base",
    "model_penalty",
    "slope_recovery",
]
