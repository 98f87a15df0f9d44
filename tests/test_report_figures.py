"""The report's figures: small multiples per row and swept value, the fixed baseline once
per panel, one colour per activation in every figure, seconds only for runs timed
together, the learned activations of every family (a user's class probed)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from adaptrun.activations import ActivationFactory, SlopeConfig
from adaptrun.activations.family import MARK
from adaptrun.activations.plots import learned_functions, unit_functions
from adaptrun.report.cli import main as report_main
from adaptrun.report.plots import DASHES, PALETTE, panels, spans_decades, styles
from adaptrun.report.runs import build_grid, load_runs


def _run(root, name, family, n, seed, timed_in, final):
    """A run folder as a run leaves it: config, metrics.json and TensorBoard scalars."""
    from torch.utils.tensorboard import SummaryWriter

    folder = root / f"{name},n={n},seed={seed}"
    (folder / ".hydra").mkdir(parents=True)
    config = {
        "seed": seed,
        "task": {"name": "function"},
        "model": {"name": "mlp"},
        "dataset": {"name": "discontinuous"},
        "trainer": {"log_every": 10},
        "activation": {"name": name, "family": family, "base": "tanh", "n": n},
    }
    OmegaConf.save(OmegaConf.create(config), folder / ".hydra" / "config.yaml")
    metrics = {
        "status": "completed",
        "steps": 100,
        "epochs": 100,
        "final_test_rel_l2": final,
        "goals": {"test_rel_l2": "min", "train_loss": "min"},
        "params": {"activation": 0 if family == "fixed" else 4},
        "convergence": {"test_rel_l2": {"0.1": None}},
        "timed_in": timed_in,
    }
    if family != "fixed":
        x = np.linspace(-4, 4, 9)
        y = np.tanh(x)
        curve = {"x": x.tolist(), "mean": y.tolist(), "min": (y - 0.1).tolist()}
        curve["max"] = (y + 0.1).tolist()
        metrics["learned_activation"] = {layer: curve for layer in ("net.1", "net.3")}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    writer = SummaryWriter(str(folder))
    for step in range(10, 101, 10):
        writer.add_scalar("train/loss", 10.0 ** (-step / 25) * (1 + seed), step)
        writer.add_scalar("test/rel_l2", final + 1 / step, step)
    writer.close()
    return folder


def _sweep(root, timed_in=lambda name, n, seed: f"job {name} {n} {seed}"):
    """tanh (fixed: n applies to nothing) and global, each at n = 1 and 10, seeds 0 and 1."""
    for name, family in (("tanh", "fixed"), ("global", "slope")):
        for n in (1, 10):
            for seed in (0, 1):
                final = 0.3 - 0.01 * n + 0.002 * seed
                _run(root, name, family, n, seed, timed_in(name, n, seed), final)
    return root


def test_the_fixed_baseline_is_one_column_drawn_once_in_every_panel(tmp_path, capsys):
    sweep = _sweep(tmp_path / "sweep")
    report_main([str(sweep)])
    err = capsys.readouterr().err
    assert "2 run(s) repeat the config and seed of another and are counted once" in err
    grid = build_grid(load_runs(sweep))
    assert grid.columns == ["global (n=1)", "global (n=10)", "tanh"] or sorted(grid.columns) == [
        "global (n=1)", "global (n=10)", "tanh"]  # fmt: skip
    assert len(grid.cells["mlp/discontinuous"]["tanh"].runs) == 2  # once per seed, not per n
    found = panels(grid)
    assert [p.title.split("\n")[0] for p in found] == [
        "mlp/discontinuous, n=1", "mlp/discontinuous, n=10"]  # fmt: skip
    for panel in found:
        assert sorted(panel.lines) == ["global", "tanh"]
        assert panel.lines["tanh"] is grid.cells["mlp/discontinuous"]["tanh"]
    table = (sweep / "results.csv").read_text()
    assert table.count(",tanh,") == 1
    report = (sweep / "report.md").read_text()
    assert "(2 runs, baseline)" in report and "(n=2" not in report
    # the figures: loss, the test metric and the learned activations, none against seconds
    import matplotlib.pyplot as plt

    for name in ("train_loss.png", "test_rel_l2.png", "learned_activation.png"):
        image = plt.imread(sweep / name)
        assert image[..., :3].std() > 0.05, name  # drawn, not blank
        assert f"({name})" in report
    assert not list(sweep.glob("*_seconds.png"))  # separate jobs: no curves against seconds
    assert "No curves against seconds: these runs were timed in separate jobs" in report


def test_curves_against_seconds_are_drawn_for_runs_timed_in_one_job(tmp_path):
    sweep = _sweep(tmp_path / "sweep", timed_in=lambda *_: "stack-0x8")
    report_main([str(sweep)])
    assert (sweep / "train_loss_seconds.png").is_file()
    assert (sweep / "test_rel_l2_seconds.png").is_file()
    assert "No curves against seconds" not in (sweep / "report.md").read_text()


def test_each_activation_keeps_one_colour_and_a_ninth_changes_dash(tmp_path):
    for i in range(9):
        _run(tmp_path, f"act{i}", "slope", 1, 0, "job", 0.3)
    look = styles(build_grid(load_runs(tmp_path)))
    assert len(look) == 9
    assert [c for c, _ in look.values()][:8] == list(PALETTE)
    assert look["act8"] == (PALETTE[0], DASHES[1])  # same colour as act0, another dash
    assert len(set(look.values())) == 9


def test_a_metric_spanning_two_decades_goes_on_a_log_axis():
    assert spans_decades(np.array([1.0, 0.5, 0.009]))
    assert not spans_decades(np.array([0.9, 0.95, 0.97]))  # an accuracy
    assert not spans_decades(np.array([1.0, -0.5, 0.001]))  # not all positive
    assert spans_decades(np.array([np.nan, 10.0, 0.1]))


def test_the_slope_family_draws_base_of_n_a_x_per_unit():
    module = ActivationFactory(SlopeConfig(variant="neuronwise", base="tanh", n=10))((3,))
    with torch.no_grad():
        module.a.copy_(torch.tensor([0.1, 0.2, 0.05]))
    x = torch.linspace(-2, 2, 5)
    y = unit_functions(module, x)
    assert y.shape == (5, 3)
    expected = torch.tanh(x[:, None] * torch.tensor([1.0, 2.0, 0.5]))
    assert torch.allclose(y, expected, atol=1e-6)


class Snake(torch.nn.Module):
    """A user's activation with no hooks: x + sin(alpha x)^2 / alpha, alpha per unit."""

    def __init__(self) -> None:
        super().__init__()
        self.alpha = torch.nn.Parameter(torch.tensor([0.5, 1.0, 2.0, 4.0]))

    def forward(self, x):
        return x + torch.sin(self.alpha * x) ** 2 / self.alpha


class Mixing(torch.nn.Module):
    """Not elementwise: every output depends on every input."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(4, 4))

    def forward(self, x):
        return x @ self.w


def test_a_users_elementwise_class_is_probed_and_others_are_left_out():
    snake, mixing = Snake(), Mixing()
    setattr(snake, MARK, (4,))  # the factory marks what it builds with its site's shape
    setattr(mixing, MARK, (4, 2))  # x @ w cannot take this shape
    model = torch.nn.Sequential(torch.nn.Linear(2, 4), snake, torch.nn.Linear(4, 4), mixing)
    x = torch.linspace(-3, 3, 7)
    y = unit_functions(snake, x)
    alpha = snake.alpha.detach()
    expected = x[:, None] + torch.sin(alpha * x[:, None]) ** 2 / alpha
    assert torch.allclose(y, expected, atol=1e-6)
    assert unit_functions(mixing, x) is None
    learned = learned_functions(model, low=-3.0, high=3.0, points=7)
    assert list(learned) == ["1"]  # the Linear layers learn no activation, Mixing is unprobed
    assert learned["1"]["mean"] == pytest.approx(expected.mean(1).tolist(), abs=1e-6)
    assert learned["1"]["max"] == pytest.approx(expected.max(1).values.tolist(), abs=1e-6)


@pytest.mark.slow  # trains a network
def test_a_run_records_and_draws_its_learned_activation(tmp_path):
    from conftest import events, read_metrics, run_cli

    out = tmp_path / "run"
    done = run_cli(
        ["experiment=jagtap_discontinuous", "activation=layerwise", "trainer.epochs=30",
         f"hydra.run.dir={out}"],
        tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    learned = read_metrics(out)["learned_activation"]
    assert len(learned) == 4  # the preset's four hidden layers
    board = events(out)
    slopes = {tag: board.Scalars(tag)[-1].value for tag in board.Tags()["scalars"]
              if tag.startswith("slopes/")}  # fmt: skip
    assert len(slopes) == 4
    for layer, curve in learned.items():
        x = np.asarray(curve["x"])
        # one unit per layer (layer-wise): tanh(s x) with s the layer's logged slope n*a
        assert curve["mean"] == pytest.approx(np.tanh(slopes[f"slopes/{layer}"] * x), abs=1e-5)
        assert curve["min"] == curve["max"] == curve["mean"]
    assert "figures/activations" in board.Tags()["images"]  # a panel per layer
    assert not math.isnan(read_metrics(out)["final_test_rel_l2"])
