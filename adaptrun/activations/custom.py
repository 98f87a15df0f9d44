"""The ``custom`` family: any ``nn.Module`` class from the user's own code, by Hydra's
``_target_`` convention, one instance per call site.

    adaptrun activation=custom activation._target_=my_acts.Snake +activation.alpha=0.5

Every key of the activation config other than ``name``, ``family`` and ``_target_`` is a
constructor argument. A class whose constructor takes ``shape`` also gets one sample's
feature shape at its call site. The module is imported from the current directory or
any installed package. The class may set ``stackable = False`` to keep trainer.stack
away from it; it then follows the hooks of ``adaptrun.activations.family`` like ours.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Mapping
from typing import Any

from hydra.utils import instantiate
from torch import nn

from adaptrun.activations.family import FAMILIES, ActivationFamily, Capabilities, require
from adaptrun.core.errors import nearest

RESERVED = ("name", "family", "_target_")


def _arguments(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in RESERVED}


def target_class(config: Mapping[str, Any]) -> type:
    """The class ``_target_`` names, or a SpecError saying why it cannot be used."""
    target = config.get("_target_")
    require(
        isinstance(target, str) and "." in target and target != "???",
        "_target_",
        f"must name your activation class as module.Class, e.g. "
        f"activation._target_=my_acts.Snake (got {target!r})",
    )
    cls = _import(str(target))
    require(
        isinstance(cls, type) and issubclass(cls, nn.Module),
        "_target_",
        f"{target} is not a torch.nn.Module class",
    )
    return cls


def _import(target: str) -> Any:
    """``module.Class`` from the current folder or an installed package. Imported here
    rather than by Hydra's get_object, which logs a multi-line error of its own and does
    not say where it looked or which names the module has."""
    if os.getcwd() not in sys.path:  # the console script does not put it there
        sys.path.append(os.getcwd())
    module_name, _, name = target.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or module_name
        require(
            False,
            "_target_",
            f"cannot import {target}: no module {missing!r} in the current folder "
            f"({os.getcwd()}) or the installed packages; run adaptrun from the folder that "
            f"holds {missing.split('.')[0]}.py, or pip install the package",
        )
    except Exception as exc:  # the user's module itself raised while importing
        reason = " ".join(str(exc).split()) or type(exc).__name__
        require(False, "_target_", f"importing {module_name} raised {type(exc).__name__}: {reason}")
    if not hasattr(module, name):
        classes = sorted(k for k, v in vars(module).items() if isinstance(v, type))
        hint = nearest(name, classes, f"{module_name}.", n=1)
        where = getattr(module, "__file__", None) or module_name
        require(
            False,
            "_target_",
            f"module {module_name} ({where}) has no {name!r}; {hint}"
            f"its classes: {', '.join(classes) or 'none'}",
        )
    return getattr(module, name)


def _takes_shape(cls: type) -> bool:
    return "shape" in inspect.signature(cls).parameters


def _check(config: Mapping[str, Any]) -> None:
    """The class imports, is a module and takes the arguments. One that does not take
    ``shape`` is built once here, since its signature may not tell (``nn.Tanh`` takes
    ``*args, **kwargs`` and refuses them when called)."""
    cls = target_class(config)
    given = _arguments(config)
    if _takes_shape(cls):
        given["shape"] = (1,)
    try:
        inspect.signature(cls).bind(**given)
        if "shape" not in given:
            cls(**given)
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        require(False, "_target_", f"{config['_target_']} cannot take {sorted(given)}: {reason}")


def _build(config: Mapping[str, Any], shape: tuple[int, ...], shared: dict[str, Any]) -> nn.Module:
    extra = {"shape": shape} if _takes_shape(target_class(config)) else {}
    spec = {"_target_": config["_target_"], **_arguments(config)}
    return instantiate(spec, **extra, _convert_="all")


def _capabilities(config: Mapping[str, Any]) -> Capabilities:
    cls = target_class(config)
    return Capabilities(
        stackable=bool(getattr(cls, "stackable", True)),
        second_derivatives=callable(getattr(cls, "derivatives", None)),
    )


FAMILIES.register(
    ActivationFamily(
        name="custom",
        config=None,
        build=_build,
        check=_check,
        capabilities=_capabilities,
        doc="your own nn.Module class: activation._target_=module.Class (+ its arguments)",
    )
)
