"""1-D function regression: fit u(x) from sampled points, judged on a dense grid."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from adaptrun.core.errors import is_count, is_number, require
from adaptrun.core.figures import pyplot
from adaptrun.data.registry import DATASETS, DatasetEntry, data_seed
from adaptrun.tasks.modes import eval_mode
from adaptrun.tasks.registry import TASKS, TaskCapabilities, TaskEntry
from adaptrun.tasks.sampling import SAMPLINGS as BOX_SAMPLINGS
from adaptrun.tasks.sampling import sample_box

if TYPE_CHECKING:
    from matplotlib.figure import Figure

Batch = tuple[torch.Tensor, torch.Tensor]


def discontinuous(x: torch.Tensor, freq: float = 18.0) -> torch.Tensor:
    """0.2 sin(6x) for x <= 0, 1 + 0.1 x cos(freq x) for x > 0 (Jagtap et al.)."""
    return torch.where(x <= 0, 0.2 * torch.sin(6 * x), 1 + 0.1 * x * torch.cos(freq * x))


FUNCTIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "discontinuous": discontinuous,  # the locally-adaptive paper, on [-3, 3]
    "discontinuous_gaaf": lambda x: discontinuous(x, 12.0),  # the global paper, on [-4, 3.75]
    "sin": torch.sin,
}
SAMPLINGS = ("random", "grid", *BOX_SAMPLINGS)  # random: uniform draws
VAL_STREAM = 7_919_000  # offsets the validation draw's generator from the training draw's


class FunctionTask:
    """Full-batch MSE regression of u(x); every step sees all training points."""

    GOALS: ClassVar[dict[str, str]] = {"train_loss": "min", "test_mse": "min", "test_rel_l2": "min"}
    # The discontinuous preset's step: 1640/s eager, 2880/s compiled after a 4.7 s compile,
    # which its 8000 steps never earn back (BENCHMARKS.md).
    compiled_step_pays = False

    def __init__(self, cfg: Any, device: torch.device, seed: int = 0, test: bool = True) -> None:
        self.cfg, self.device, self.test = cfg, device, test
        self.fn = FUNCTIONS[cfg["function"]]
        low, high = (float(v) for v in cfg["domain"])
        self.points_seed = seed
        self.x_train, self.y_train = self._pair(self._points(seed), self.fn, device)
        grid = torch.linspace(low, high, int(cfg["n_test"]), dtype=torch.float64)
        self.x_test, self.y_test = self._pair(grid, self.fn, device)
        self.n_val = int(cfg.get("n_val", 0))
        self.x_val, self.y_val = self._pair(self._val_points(seed), self.fn, device)
        self.goals = {
            **{k: v for k, v in self.GOALS.items() if test or not k.startswith("test_")},
            **({"val_mse": "min", "val_rel_l2": "min"} if self.n_val else {}),
        }

    def _points(self, seed: int) -> torch.Tensor:
        """The training points the seed draws (``grid``: evenly spaced, for every seed)."""
        low, high = (float(v) for v in self.cfg["domain"])
        n, method = int(self.cfg["n_train"]), self.cfg["sampling"]
        if method == "grid":
            return torch.linspace(low, high, n, dtype=torch.float64)
        gen = torch.Generator().manual_seed(seed)
        if method == "random":  # uniform draws, as the paper's "chosen at random"
            return (
                (low + (high - low) * torch.rand(n, generator=gen, dtype=torch.float64))
                .sort()
                .values
            )
        return sample_box(n, [low], [high], method, gen)[:, 0].sort().values

    def _val_points(self, seed: int) -> torch.Tensor:
        """The seed's validation points: ``dataset.n_val`` uniform draws over the domain
        from a stream of their own (the training points' draw is unchanged by them), for
        choosing settings without reading the test grid."""
        low, high = (float(v) for v in self.cfg["domain"])
        gen = torch.Generator().manual_seed(VAL_STREAM + seed)
        return low + (high - low) * torch.rand(self.n_val, generator=gen, dtype=torch.float64)

    @staticmethod
    def _pair(x: torch.Tensor, fn: Callable, device: torch.device) -> Batch:
        return x[:, None].float().to(device), fn(x)[:, None].float().to(device)

    input_shape = (1,)
    num_outputs = 1
    steps_per_epoch = 1

    def with_seed(self, seed: int) -> FunctionTask:
        """Another run's task: its seed draws its points, unless ``dataset.split_seed``
        fixes one draw for every seed (the test grid is shared either way)."""
        if self.cfg["split_seed"] is not None or seed == self.points_seed:
            return self
        task = copy.copy(self)
        task.points_seed = seed
        task.x_train, task.y_train = self._pair(self._points(seed), self.fn, self.device)
        task.x_val, task.y_val = self._pair(self._val_points(seed), self.fn, self.device)
        return task

    def train_batches(self, epoch: int) -> Iterator[Batch]:
        yield self.x_train, self.y_train

    def loss(self, model: nn.Module, batch: Batch, functional: bool = False) -> torch.Tensor:
        x, y = batch
        return F.mse_loss(model(x), y)

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        scores = {}
        splits = [("val", self.x_val, self.y_val)] if self.n_val else []
        splits += [("test", self.x_test, self.y_test)] if self.test else []
        for split, x, y in splits:
            with eval_mode(model):
                err = model(x) - y
            scores[f"{split}_mse"] = err.pow(2).mean().item()
            scores[f"{split}_rel_l2"] = (err.norm() / y.norm()).item()
        return scores

    def settings(self) -> dict[str, Any]:
        return {"data_seed": self.points_seed}  # what drew the training points

    @torch.no_grad()
    def figures(self, model: nn.Module) -> dict[str, Figure]:
        """Prediction against the target with the training points, and the pointwise error
        (on the test grid: none for a run that does not score it)."""
        if not self.test:
            return {}
        plt = pyplot()
        x = self.x_test[:, 0].cpu()
        pred, target = model(self.x_test)[:, 0].cpu(), self.y_test[:, 0].cpu()
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(6, 5), sharex=True)
        top.plot(x, target, "k-", lw=1, label="target")
        top.plot(x, pred, "r--", lw=1, label="network")
        top.plot(self.x_train[:, 0].cpu(), self.y_train[:, 0].cpu(), "b.", ms=2, label="training")
        top.legend(loc="upper left", fontsize=8)
        bottom.semilogy(x, (pred - target).abs().clamp_min(1e-12), "m-", lw=1)
        bottom.set_ylabel("|error|")
        bottom.set_xlabel("x")
        # fixed margins that fit these labels: tight_layout measures every tick label
        # (0.13 s a figure with it, 0.10 s without, paid by every run of a sweep)
        fig.subplots_adjust(left=0.13, right=0.97, bottom=0.1, top=0.97, hspace=0.08)
        return {"prediction": fig}


@dataclasses.dataclass
class FunctionTaskConfig:
    name: str = "function"


@dataclasses.dataclass
class FunctionDatasetConfig:
    """A 1-D target function sampled on ``domain``, judged on a dense grid."""

    name: str = ""
    function: str = "discontinuous"
    domain: list[float] = dataclasses.field(default_factory=lambda: [-3.0, 3.0])
    n_train: int = 300
    sampling: str = "random"  # random | grid | lhs | uniform | hammersley | halton | sobol
    n_test: int = 2000
    n_val: int = 0  # validation points the seed draws (0: none), for tuning without the test
    split_seed: int | None = None  # None: the run's seed draws the points


def _check_dataset(dataset: Mapping[str, Any]) -> None:
    require(
        dataset["function"] in FUNCTIONS,
        "dataset.function",
        f"unknown function {dataset['function']!r}; valid: {', '.join(FUNCTIONS)}",
    )
    low, high = dataset["domain"]
    require(
        is_number(low) and is_number(high) and low < high,
        "dataset.domain",
        f"must be [low, high] with low < high (got {[low, high]})",
    )
    require(
        dataset["sampling"] in SAMPLINGS,
        "dataset.sampling",
        f"unknown sampling {dataset['sampling']!r}; valid: {', '.join(SAMPLINGS)}",
    )
    for key in ("n_train", "n_test"):
        require(is_count(dataset[key]), f"dataset.{key}", "must be an integer >= 1")
    require(is_count(dataset["n_val"], 0), "dataset.n_val", "must be an integer >= 0 (0: none)")


DATASETS.register(
    DatasetEntry(
        name="discontinuous", config=FunctionDatasetConfig, kind="function", check=_check_dataset
    )
)
TASKS.register(
    TaskEntry(
        name="function",
        config=FunctionTaskConfig,
        takes="function",
        goals=FunctionTask.GOALS,
        primary="test_rel_l2",
        validation=("dataset.n_val", 1000),  # uniform over the domain, a stream of their own
        build=lambda cfg, device: FunctionTask(
            cfg["dataset"], device, data_seed(cfg), bool(cfg["trainer"]["test"])
        ),
        input_shape=lambda cfg: FunctionTask.input_shape,
        capabilities=TaskCapabilities(full_batch=True, functional_loss=True),
    )
)
