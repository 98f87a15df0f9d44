"""The viscous Burgers equation as a physics-informed network (Raissi et al.; Jagtap et al.).

    u_t + u u_x = nu u_xx,  x in [-1, 1], t in [0, 1],  u(x, 0) = -sin(pi x),  u(+-1, t) = 0

Loss = W_F * mean(residual^2 at collocation points) + W_u * mean((u - u_data)^2 at
initial/boundary points). The network sees (x, 2t - 1), i.e. both inputs on [-1, 1].
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, cast

import numpy as np
import torch
from torch import nn
from torch.func import jacrev, vmap

from adaptrun.activations import ActivationFactory
from adaptrun.core.errors import is_count, is_number, require
from adaptrun.core.figures import pyplot
from adaptrun.data.registry import DATASETS, DatasetEntry, data_seed
from adaptrun.models.registry import MODELS
from adaptrun.tasks.burgers_exact import exact_grid, exact_u
from adaptrun.tasks.modes import eval_mode
from adaptrun.tasks.registry import TASKS, TaskCapabilities, TaskEntry
from adaptrun.tasks.sampling import SAMPLINGS, sample_box

if TYPE_CHECKING:
    from matplotlib.figure import Figure

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # collocation xt, data xt, data u
UFn = Callable[[torch.Tensor], torch.Tensor]  # (N, 2) points (x, t) -> (N, 1) values
log = logging.getLogger(__name__)
SHOCK_POINTS = 2001  # the x grid at t = 1 on which the shock is located (spacing 0.001)
VAL_STREAM = 7_919_000  # offsets the validation draw's generator from the training draw's
PROFILE_TIMES = (0.25, 0.5, 0.75, 1.0)
DATA_MEANS = ("joint", "separate")


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


class CarriesDerivatives(Protocol):
    """A model whose capabilities say ``forward_derivatives`` (the MLP's ``taylor``)."""

    def taylor(
        self, x: torch.Tensor, directions: Any, second: Any = ()
    ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]: ...


def residual_forward(model: nn.Module, xt: torch.Tensor, nu: float) -> torch.Tensor:
    """The same residual with u_x, u_t and u_xx carried forward through the network with
    its values (``model.taylor``): exact, one forward pass and no nested autograd."""
    shift, scale = xt.new_tensor(SHIFT), xt.new_tensor(SCALE)
    along_x, along_t = xt.new_tensor([SCALE[0], 0.0]), xt.new_tensor([0.0, SCALE[1]])
    taylor = cast(CarriesDerivatives, model).taylor  # the task checked the capability
    u, (u_x, u_t), (u_xx,) = taylor(xt * scale + shift, [along_x, along_t], second=[0])
    return u_t[:, 0] + u[:, 0] * u_x[:, 0] - nu * u_xx[:, 0]


class BurgersTask:
    """Full-batch physics-informed training; the exact solution comes from Cole-Hopf."""

    GOALS: ClassVar[dict[str, str]] = {
        "train_loss": "min",
        "loss_residual": "min",
        "loss_data": "min",
        "test_mse": "min",
        "test_rel_l2": "min",
        "test_shock_error": "min",
    }
    input_shape = (2,)
    num_outputs = 1
    steps_per_epoch = 1

    def __init__(
        self,
        data: Any,
        task: Any,
        device: torch.device,
        derivatives: str = "autograd",
        seed: int = 0,
        test: bool = True,
    ) -> None:
        self.test = test  # false: the exact solution's test grid is never computed nor scored
        self.derivatives = derivatives  # forward | autograd (resolved from task.derivatives)
        self.data, self.device = data, device
        self.nu = float(data["nu"])
        self.weight_residual = float(task["weight_residual"])
        self.weight_data = float(task["weight_data"])
        self.residual_at_data = bool(task.get("residual_at_data", False))
        self.separate_means = task.get("data_means", "joint") == "separate"
        self.n_initial = int(data["n_boundary"]) // 2
        self.points_seed = seed
        self.batch = self._points(seed)
        if test:
            self._test_grid()
        self.n_val = int(data.get("n_val", 0))
        self.xt_val, self.u_val = self._val_points(seed)
        self.goals = {
            **{k: v for k, v in self.GOALS.items() if test or not k.startswith("test_")},
            **({"val_mse": "min", "val_rel_l2": "min"} if self.n_val else {}),
        }

    def _test_grid(self) -> None:
        """The exact solution on the test grid, and the shock's position at t = 1 (where
        the exact u crosses zero near x = 0, on a fine grid)."""
        data, device = self.data, self.device
        x, t, u = exact_grid(
            int(data["test_nx"]), int(data["test_nt"]), self.nu, int(data["quadrature"])
        )
        tt, xx = np.meshgrid(t, x, indexing="ij")
        self.grid = (x, t)
        self.xt_test = torch.tensor(
            np.stack([xx.ravel(), tt.ravel()], 1), dtype=torch.float32, device=device
        )
        self.u_test = torch.tensor(u.reshape(-1, 1), dtype=torch.float32, device=device)
        self.x_shock = np.linspace(-1.0, 1.0, SHOCK_POINTS)
        exact_end = exact_u(self.x_shock, np.ones(SHOCK_POINTS), self.nu, int(data["quadrature"]))
        self.shock_exact = shock_position(self.x_shock, exact_end) or 0.0
        self.xt_shock = torch.tensor(
            np.stack([self.x_shock, np.ones(SHOCK_POINTS)], 1), dtype=torch.float32, device=device
        )

    def _points(self, seed: int) -> Batch:
        """The seed's training points: initial (t = 0) and boundary (x = +-1) points, half
        each, and the collocation points inside the domain."""
        data = self.data
        gen = torch.Generator().manual_seed(seed)
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
        return tuple(v.float().to(self.device) for v in (xt_f, xt_data, u_data))  # type: ignore[return-value]

    def _val_points(self, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The seed's validation points: ``dataset.n_val`` uniform draws over [-1, 1] x
        [0, 1] from a stream of their own, with the exact u there: for choosing settings
        without reading the test grid."""
        gen = torch.Generator().manual_seed(VAL_STREAM + seed)
        xt = sample_box(self.n_val, [-1.0, 0.0], [1.0, 1.0], "uniform", gen).numpy()
        u = exact_u(xt[:, 0], xt[:, 1], self.nu, int(self.data["quadrature"]))
        return (
            torch.tensor(xt, dtype=torch.float32, device=self.device),
            torch.tensor(u.reshape(-1, 1), dtype=torch.float32, device=self.device),
        )

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
        return {"derivatives": self.derivatives, "data_seed": self.points_seed}

    def with_seed(self, seed: int) -> BurgersTask:
        """Another run's task: its seed draws its points, unless ``dataset.split_seed``
        fixes one draw for every seed (the exact solution's grid is shared either way)."""
        if self.data["split_seed"] is not None or seed == self.points_seed:
            return self
        task = copy.copy(self)
        task.points_seed = seed
        task.batch = self._points(seed)
        task.xt_val, task.u_val = self._val_points(seed)
        return task

    def train_batches(self, epoch: int) -> Iterator[Batch]:
        yield self.batch

    def terms(
        self, model: nn.Module, batch: Batch, functional: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean squared residual, mean squared initial/boundary misfit). The residual is
        also taken at the initial/boundary points with ``task.residual_at_data``, and the
        misfit is the initial points' mean plus the boundary points' with
        ``task.data_means=separate`` (both as DeepXDE computes them)."""
        xt_f, xt_data, u_data = batch
        u = self.u(model)
        if self.residual_at_data:
            xt_f = torch.cat([xt_f, xt_data])
        if self.derivatives == "forward":  # plain forward ops: safe under torch.func too
            f = residual_forward(model, xt_f, self.nu)
        else:
            f = (residual_functional if functional else residual)(u, xt_f, self.nu)
        misfit = (u(xt_data) - u_data).pow(2)
        if self.separate_means:
            n = self.n_initial
            return f.pow(2).mean(), misfit[:n].mean() + misfit[n:].mean()
        return f.pow(2).mean(), misfit.mean()

    def loss(self, model: nn.Module, batch: Batch, functional: bool = False) -> torch.Tensor:
        res, data = self.terms(model, batch, functional)
        return self.weight_residual * res + self.weight_data * data

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        with eval_mode(model):
            res, data = self.terms(model, self.batch)  # needs autograd for input derivatives
            with torch.no_grad():
                scores = self.test_scores(self.u(model))
        return {"loss_residual": res.item(), "loss_data": data.item(), **scores}

    def test_scores(self, u: UFn) -> dict[str, float]:
        """The errors of any solution ``u`` of physical (x, t) against the exact one (the
        DeepXDE peer scores its networks with this too)."""
        val = {}
        if self.n_val:
            miss = u(self.xt_val) - self.u_val
            val = {"val_mse": miss.pow(2).mean().item(),
                   "val_rel_l2": (miss.norm() / self.u_val.norm()).item()}  # fmt: skip
        if not self.test:
            return val
        err = u(self.xt_test) - self.u_test
        end = u(self.xt_shock)[:, 0].double().cpu().numpy()
        shock = shock_position(self.x_shock, end)
        return {
            **val,
            "test_mse": err.pow(2).mean().item(),
            "test_rel_l2": (err.norm() / self.u_test.norm()).item(),
            # no crossing at all: 1, the half-width of the domain
            "test_shock_error": 1.0 if shock is None else abs(shock - self.shock_exact),
        }

    @torch.no_grad()
    def figures(self, model: nn.Module) -> dict[str, Figure]:
        """Predicted u(x, t), the exact u and |error| over the test grid (none for a run
        that does not score it)."""
        if not self.test:
            return {}
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
        # fixed margins that fit these labels (tight_layout measures every tick label)
        fig.subplots_adjust(left=0.065, right=0.98, bottom=0.15, top=0.91, wspace=0.12)
        return {"solution": fig, "profiles": self._profiles(plt, pred, exact)}

    def _profiles(self, plt: Any, pred: np.ndarray, exact: np.ndarray) -> Figure:
        """u(x) against the exact solution at t = 0.25, 0.5, 0.75 and 1: a displaced shock
        shows here however small the rel L2 error looks."""
        x, t = self.grid
        fig, axes = plt.subplots(1, len(PROFILE_TIMES), figsize=(12, 2.8), sharey=True)
        for ax, when in zip(axes, PROFILE_TIMES, strict=True):
            i = int(np.abs(t - when).argmin())
            ax.plot(x, exact[i], "k-", lw=1, label="exact")
            ax.plot(x, pred[i], "r--", lw=1, label="network")
            ax.set_title(f"t = {t[i]:.2f}")
            ax.set_xlabel("x")
            ax.grid(True, alpha=0.3)
        axes[0].set_ylabel("u")
        axes[0].legend(fontsize=7)
        fig.subplots_adjust(left=0.06, right=0.99, bottom=0.17, top=0.9, wspace=0.08)
        return fig


def shock_position(x: np.ndarray, u: np.ndarray) -> float | None:
    """Where u falls through zero (from positive on the left to negative on the right)
    closest to x = 0, linearly interpolated between grid points; None if it never does."""
    falls = np.flatnonzero((u[:-1] > 0) & (u[1:] <= 0))
    if not len(falls):
        return None
    i0, i1 = falls, falls + 1
    where = x[i0] + (x[i1] - x[i0]) * u[i0] / (u[i0] - u[i1])
    return float(where[np.abs(where).argmin()])


@dataclasses.dataclass
class BurgersTaskConfig:
    name: str = "burgers"
    weight_residual: float = 1.0  # W_F, on the mean squared PDE residual
    weight_data: float = 1.0  # W_u, on the initial/boundary misfit
    derivatives: str = "auto"  # auto | forward | autograd: how u_x, u_t, u_xx are computed
    residual_at_data: bool = False  # also the residual at the initial/boundary points (DeepXDE)
    data_means: str = "joint"  # joint: one mean misfit | separate: initial + boundary (DeepXDE)


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
    sampling: str = "hammersley"  # hammersley | halton | sobol | lhs | uniform
    split_seed: int | None = None  # None: the run's seed draws the points
    test_nx: int = 256
    test_nt: int = 100
    n_val: int = 0  # validation points the seed draws (0: none), for tuning without the test
    quadrature: int = 400


def _check_dataset(dataset: Mapping[str, Any]) -> None:
    require(
        dataset["sampling"] in SAMPLINGS,
        "dataset.sampling",
        f"unknown sampling {dataset['sampling']!r}; valid: {', '.join(SAMPLINGS)}",
    )
    for key in ("n_boundary", "n_collocation", "test_nx", "test_nt", "quadrature"):
        require(is_count(dataset[key]), f"dataset.{key}", "must be an integer >= 1")
    require(is_count(dataset["n_val"], 0), "dataset.n_val", "must be an integer >= 0 (0: none)")
    require(is_number(dataset["nu"]) and dataset["nu"] > 0, "dataset.nu", "must be > 0")


def _check(cfg: Mapping[str, Any]) -> None:
    for key in ("weight_residual", "weight_data"):
        value = cfg["task"][key]
        require(is_number(value) and value >= 0, f"task.{key}", "must be >= 0")
    require(
        cfg["task"]["data_means"] in DATA_MEANS,
        "task.data_means",
        f"unknown {cfg['task']['data_means']!r}; valid: {', '.join(DATA_MEANS)}",
    )
    require(
        isinstance(cfg["task"]["residual_at_data"], bool),
        "task.residual_at_data",
        "must be true or false",
    )
    resolve_derivatives(cfg)


def _build(cfg: Mapping[str, Any], device: torch.device) -> BurgersTask:
    mode = resolve_derivatives(cfg)
    log.info(
        "burgers: input derivatives by %s mode (task.derivatives=%s)",
        mode,
        cfg["task"]["derivatives"],
    )
    test = bool(cfg["trainer"]["test"])
    return BurgersTask(cfg["dataset"], cfg["task"], device, mode, data_seed(cfg), test)


DATASETS.register(
    DatasetEntry(name="burgers", config=BurgersDatasetConfig, kind="burgers", check=_check_dataset)
)
TASKS.register(
    TaskEntry(
        name="burgers",
        config=BurgersTaskConfig,
        takes="burgers",
        goals=BurgersTask.GOALS,
        primary="test_rel_l2",
        validation=("dataset.n_val", 2000),  # uniform over the domain, scored on the exact u
        build=_build,
        input_shape=lambda cfg: BurgersTask.input_shape,
        check=_check,
        # the residual differentiates the network twice in x
        capabilities=TaskCapabilities(
            full_batch=True, input_derivatives=True, functional_loss=True
        ),
    )
)
