"""The viscous Burgers equation as a physics-informed network (Raissi et al.; Jagtap et al.).

    u_t + u u_x = nu u_xx,  x in [-1, 1], t in [0, 1],  u(x, 0) = -sin(pi x),  u(+-1, t) = 0

Loss = W_F * mean(residual^2 at collocation points) + W_u * mean((u - u_data)^2 at
initial/boundary points). The network sees (x, 2t - 1), i.e. both inputs on [-1, 1].
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.func import jacrev, vmap

from adaptrun.activations import ActivationFactory
from adaptrun.data.registry import DATASETS, DatasetEntry
from adaptrun.errors import is_count, is_number, require
from adaptrun.figures import pyplot
from adaptrun.models.registry import MODELS
from adaptrun.tasks.burgers_exact import exact_grid
from adaptrun.tasks.modes import eval_mode
from adaptrun.tasks.registry import TASKS, TaskCapabilities, TaskEntry
from adaptrun.tasks.sampling import SAMPLINGS, sample_box

if TYPE_CHECKING:
    from matplotlib.figure import Figure

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # collocation xt, data xt, data u
UFn = Callable[[torch.Tensor], torch.Tensor]  # (N, 2) points (x, t) -> (N, 1) values
log = logging.getLogger(__name__)


def residual(u_fn: UFn, xt: torch.Tensor, nu: float) -> torch.Tensor:
    """u_t + u u_x - nu u_xx at each point, by reverse-mode autograd (the reference)."""
    xt = xt.detach().requires_grad_(True)
    u = u_fn(xt)[:, 0]
    du = torch.autograd.grad(u.sum(), xt, create_graph=True)[0]
    u_x, u_t = du[:, 0], du[:, 1]
    u_xx = torch.autograd.grad(u_x.sum(), xt, create_graph=True)[0][:, 0]
    return u_t + u * u_x - nu * u_xx


def residual_functional(u_fn: UFn, xt: torch.Tensor, nu: float) -> torch.Tensor:
    """The same residual with torch.func (jacrev, vmap), so torch.compile can trace it
    together with the parameter gradient (it cannot trace a double backward)."""

    def at(point: torch.Tensor) -> torch.Tensor:
        return u_fn(point[None])[0, 0]

    du = vmap(jacrev(at))(xt)
    u_xx = vmap(jacrev(jacrev(at)))(xt)[:, 0, 0]
    return du[:, 1] + u_fn(xt)[:, 0] * du[:, 0] - nu * u_xx


# (x, t) -> what the network sees: x and 2t - 1 (both on [-1, 1])
SHIFT, SCALE = (0.0, -1.0), (1.0, 2.0)
DERIVATIVES = ("auto", "forward", "autograd")


def residual_forward(model: nn.Module, xt: torch.Tensor, nu: float) -> torch.Tensor:
    """The same residual with u_x, u_t and u_xx carried forward through the network with
    its values (``model.taylor``): exact, one forward pass and no nested autograd."""
    shift, scale = xt.new_tensor(SHIFT), xt.new_tensor(SCALE)
    along_x, along_t = xt.new_tensor([SCALE[0], 0.0]), xt.new_tensor([0.0, SCALE[1]])
    u, (u_x, u_t), (u_xx,) = model.taylor(xt * scale + shift, [along_x, along_t], second=[0])
    return u_t[:, 0] + u[:, 0] * u_x[:, 0] - nu * u_xx[:, 0]


class BurgersTask:
    """Full-batch physics-informed training; the exact solution comes from Cole-Hopf."""

    GOALS: ClassVar[dict[str, str]] = {
        "train_loss": "min",
        "loss_residual": "min",
        "loss_data": "min",
        "test_mse": "min",
        "test_rel_l2": "min",
    }
    input_shape = (2,)
    num_outputs = 1
    steps_per_epoch = 1

    def __init__(
        self, data: Any, task: Any, device: torch.device, derivatives: str = "autograd"
    ) -> None:
        self.derivatives = derivatives  # forward | autograd (resolved from task.derivatives)
        self.nu = float(data["nu"])
        self.weight_residual = float(task["weight_residual"])
        self.weight_data = float(task["weight_data"])
        gen = torch.Generator().manual_seed(int(data["split_seed"]))
        method = data["sampling"]
        n_b = int(data["n_boundary"])
        n_ic = n_b // 2
        x_ic = sample_box(n_ic, [-1.0], [1.0], method, gen)
        t_bc = sample_box(n_b - n_ic, [0.0], [1.0], method, gen)
        side = torch.where(torch.arange(n_b - n_ic) % 2 == 0, -1.0, 1.0).double()[:, None]
        xt_data = torch.cat(
            [torch.cat([x_ic, torch.zeros_like(x_ic)], 1), torch.cat([side, t_bc], 1)]
        )
        u_data = torch.cat([-torch.sin(math.pi * x_ic), torch.zeros_like(t_bc)])
        xt_f = sample_box(int(data["n_collocation"]), [-1.0, 0.0], [1.0, 1.0], method, gen)
        self.batch = tuple(v.float().to(device) for v in (xt_f, xt_data, u_data))
        x, t, u = exact_grid(
            int(data["test_nx"]), int(data["test_nt"]), self.nu, int(data["quadrature"])
        )
        tt, xx = np.meshgrid(t, x, indexing="ij")
        self.grid = (x, t)
        self.xt_test = torch.tensor(
            np.stack([xx.ravel(), tt.ravel()], 1), dtype=torch.float32, device=device
        )
        self.u_test = torch.tensor(u.reshape(-1, 1), dtype=torch.float32, device=device)
        self.goals = dict(self.GOALS)

    @staticmethod
    def u(model: nn.Module) -> UFn:
        """The solution as a function of physical (x, t): the network sees (x, 2t - 1)."""
        return lambda xt: model(xt * xt.new_tensor(SCALE) + xt.new_tensor(SHIFT))

    @property
    def compiled_step_pays(self) -> bool:
        """Forward derivatives compile to about 2x the eager step after a few seconds'
        compile; the torch.func (jacrev) residual the autograd mode compiles to is slower."""
        return self.derivatives == "forward"

    def settings(self) -> dict[str, Any]:
        return {"derivatives": self.derivatives}

    def with_seed(self, seed: int) -> BurgersTask:
        """Points and batches do not depend on the run's seed: the same task serves all."""
        return self

    def train_batches(self, epoch: int) -> Iterator[Batch]:
        yield self.batch

    def terms(
        self, model: nn.Module, batch: Batch, functional: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean squared residual, mean squared initial/boundary misfit)."""
        xt_f, xt_data, u_data = batch
        u = self.u(model)
        if self.derivatives == "forward":  # plain forward ops: safe under torch.func too
            f = residual_forward(model, xt_f, self.nu)
        else:
            f = (residual_functional if functional else residual)(u, xt_f, self.nu)
        return f.pow(2).mean(), (u(xt_data) - u_data).pow(2).mean()

    def loss(self, model: nn.Module, batch: Batch, functional: bool = False) -> torch.Tensor:
        res, data = self.terms(model, batch, functional)
        return self.weight_residual * res + self.weight_data * data

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        with eval_mode(model):
            res, data = self.terms(model, self.batch)  # needs autograd for input derivatives
            with torch.no_grad():
                err = self.u(model)(self.xt_test) - self.u_test
        return {
            "loss_residual": res.item(),
            "loss_data": data.item(),
            "test_mse": err.pow(2).mean().item(),
            "test_rel_l2": (err.norm() / self.u_test.norm()).item(),
        }

    @torch.no_grad()
    def figures(self, model: nn.Module) -> dict[str, Figure]:
        """Predicted u(x, t), the exact u and |error| over the test grid."""
        plt = pyplot()
        x, t = self.grid
        shape = (len(t), len(x))
        pred = self.u(model)(self.xt_test)[:, 0].cpu().numpy().reshape(shape)
        exact = self.u_test[:, 0].cpu().numpy().reshape(shape)
        fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), sharey=True)
        extent = (t[0], t[-1], x[0], x[-1])
        panels = [
            ("network u(x, t)", pred, "RdBu_r"),
            ("exact u(x, t)", exact, "RdBu_r"),
            ("|error|", np.abs(pred - exact), "magma"),
        ]
        for ax, (title, image, cmap) in zip(axes, panels, strict=True):
            shown = ax.imshow(image.T, origin="lower", aspect="auto", extent=extent, cmap=cmap)
            ax.set_title(title)
            ax.set_xlabel("t")
            fig.colorbar(shown, ax=ax)
        axes[0].set_ylabel("x")
        fig.tight_layout()
        return {"solution": fig}


@dataclasses.dataclass
class BurgersTaskConfig:
    name: str = "burgers"
    weight_residual: float = 1.0  # W_F, on the mean squared PDE residual
    weight_data: float = 1.0  # W_u, on the initial/boundary misfit
    derivatives: str = "auto"  # auto | forward | autograd: how u_x, u_t, u_xx are computed


def resolve_derivatives(cfg: Mapping[str, Any]) -> str:
    """``auto``: forward wherever the model carries derivatives forward and its activation
    has closed-form second derivatives; autograd elsewhere. ``forward`` where it cannot
    apply is refused, naming why."""
    setting = cfg["task"]["derivatives"]
    require(
        setting in DERIVATIVES,
        "task.derivatives",
        f"unknown way {setting!r}; valid: {', '.join(DERIVATIVES)}",
    )
    if setting == "autograd":
        return setting
    model = MODELS[cfg["model"]["name"]].capabilities_of(cfg["model"])
    activation = ActivationFactory(cfg["activation"]).capabilities
    why = ""
    if not model.forward_derivatives:
        why = f"model {cfg['model']['name']} does not carry input derivatives forward"
    elif not activation.second_derivatives:
        why = (
            f"activation {cfg['activation']['name']} has no closed-form second derivative "
            "(smooth bases: tanh, sigmoid, sin, gelu, silu)"
        )
    require(not (setting == "forward" and why), "task.derivatives", f"forward: {why}; use auto")
    return "autograd" if why else "forward"


@dataclasses.dataclass
class BurgersDatasetConfig:
    """The problem's points and its exact solution's test grid."""

    name: str = "burgers"
    nu: float = 0.01 / math.pi
    n_boundary: int = 400
    n_collocation: int = 10000
    sampling: str = "lhs"  # lhs | uniform
    split_seed: int = 0
    test_nx: int = 256
    test_nt: int = 100
    quadrature: int = 400


def _check_dataset(dataset: Mapping[str, Any]) -> None:
    require(
        dataset["sampling"] in SAMPLINGS,
        "dataset.sampling",
        f"unknown sampling {dataset['sampling']!r}; valid: {', '.join(SAMPLINGS)}",
    )
    for key in ("n_boundary", "n_collocation", "test_nx", "test_nt", "quadrature"):
        require(is_count(dataset[key]), f"dataset.{key}", "must be an integer >= 1")
    require(is_number(dataset["nu"]) and dataset["nu"] > 0, "dataset.nu", "must be > 0")


def _check(cfg: Mapping[str, Any]) -> None:
    for key in ("weight_residual", "weight_data"):
        value = cfg["task"][key]
        require(is_number(value) and value >= 0, f"task.{key}", "must be >= 0")
    resolve_derivatives(cfg)


def _build(cfg: Mapping[str, Any], device: torch.device) -> BurgersTask:
    mode = resolve_derivatives(cfg)
    log.info(
        "burgers: input derivatives by %s mode (task.derivatives=%s)",
        mode,
        cfg["task"]["derivatives"],
    )
    return BurgersTask(cfg["dataset"], cfg["task"], device, mode)


DATASETS.register(
    DatasetEntry(name="burgers", config=BurgersDatasetConfig, kind="burgers", check=_check_dataset)
)
TASKS.register(
    TaskEntry(
        name="burgers",
        config=BurgersTaskConfig,
        takes="burgers",
        goals=BurgersTask.GOALS,
        build=_build,
        input_shape=lambda cfg: BurgersTask.input_shape,
        check=_check,
        # the residual differentiates the network twice in x
        capabilities=TaskCapabilities(
            full_batch=True, input_derivatives=True, functional_loss=True
        ),
    )
)
