"""The plugin contract: a user's own activation class runs without editing adaptrun, is
logged, penalised, plotted, exempt from weight decay and stacked like ours; a bad
``_target_`` is one line and exit 2; the runner asks capabilities, never names."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
import torch
from conftest import REPO, compose_config, events, read_metrics, run_cli

from adaptrun.config.check import check_config
from adaptrun.core.errors import ConfigError
from adaptrun.runner.run import run
from adaptrun.training.optim import build_optimizer

# A user's file, outside the package: Snake (Ziyin et al. 2020) with one alpha per unit.
USER_CODE = """
import torch
from torch import nn


class Snake(nn.Module):
    def __init__(self, shape, alpha=1.0, decay=0.001):
        super().__init__()
        self.alpha = nn.Parameter(torch.full(shape, float(alpha)))
        self.offset = nn.Parameter(torch.zeros(shape))
        self.decay = decay

    def forward(self, x):
        return x + torch.sin(self.alpha * x) ** 2 / self.alpha + self.offset

    def slopes(self, name):
        return {name: self.alpha.detach()}

    def penalty(self):
        return self.decay * self.alpha.pow(2).sum()

    def curves(self, x):
        return self(x.view(-1, 1).expand(-1, *self.alpha.shape)).reshape(len(x), -1)

    def no_weight_decay(self):
        return ["alpha"]


class Frozen(Snake):
    stackable = False


def not_a_module(x):
    return x
"""


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A module of the user's code in the current folder, under a name of its own."""
    name = f"user_acts_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(USER_CODE)
    monkeypatch.chdir(tmp_path)
    return name


def snake(module: str, *extra: str) -> list[str]:
    return ["activation=custom", f"activation._target_={module}.Snake", *extra]


@pytest.mark.slow
def test_a_users_activation_runs_from_the_cli_with_slopes_penalty_and_curves(user_module):
    args = [*snake(user_module, "+activation.alpha=0.5"), "trainer.epochs=2", "hydra.run.dir=run"]
    result = run_cli(args, cwd=Path.cwd())
    assert result.returncode == 0, result.stderr
    metrics = read_metrics(Path("run"))
    assert metrics["status"] == "completed"
    assert metrics["final_test_acc"] > 0.5
    assert metrics["params"]["activation"] == 2 * (64 + 64)  # alpha and offset per unit
    assert metrics["hparams"]["activation.alpha"] == 0.5
    assert metrics["hparams"]["activation._target_"] == f"{user_module}.Snake"
    acc = events(Path("run"))
    tags = acc.Tags()
    assert {"slopes/net.2", "slopes/net.4"} <= set(tags["histograms"])
    assert "figures/activations" in tags["images"]
    mean_alpha = [e.value for e in acc.Scalars("slopes_mean/net.2")]
    assert mean_alpha[0] != 0.5  # logged after training moved it
    penalty = [e.value for e in acc.Scalars("train/slope_recovery")]
    assert penalty[0] == pytest.approx(0.001 * 0.25 * 128, rel=0.3)  # decay * sum(alpha^2)


def test_a_users_activation_follows_the_protocol_in_process(user_module, tmp_path):
    cfg = compose_config([*snake(user_module), "optimizer.weight_decay=0.1"])
    checked = check_config(cfg)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), checked.activation((4,)))
    groups = build_optimizer(model, cfg.optimizer).param_groups
    exempt = [g for g in groups if g["weight_decay"] == 0.0]
    assert [tuple(p.shape) for g in exempt for p in g["params"]] == [(4,)]
    assert exempt[0]["params"][0] is model[1].alpha  # named by no_weight_decay(), not offset


@pytest.mark.slow
def test_a_users_activation_stacks_unless_it_says_it_cannot(user_module, tmp_path):
    combined = run(
        compose_config([*snake(user_module), "trainer.epochs=1", "trainer.stack=2"]), tmp_path
    )
    assert combined["status"] == "completed" and len(combined["runs"]) == 2
    frozen = ["activation=custom", f"activation._target_={user_module}.Frozen", "trainer.stack=2"]
    with pytest.raises(ConfigError) as info:
        check_config(compose_config(frozen))
    assert info.value.key == "trainer.stack"


@pytest.mark.parametrize(
    ("target", "extra", "reason"),
    [
        ("{m}.Nope", [], r"module {m} \(.*{m}\.py\) has no 'Nope'; its classes: Frozen, Snake"),
        ("{m}.Snak", [], r"has no 'Snak'; did you mean {m}\.Snake\?"),
        ("{m}.not_a_module", [], r"{m}\.not_a_module is not a torch\.nn\.Module class"),
        ("{m}.Snake", ["+activation.alpah=1"], r"{m}\.Snake cannot take \['alpah', 'shape'\]"),
        ("???", [], r"must name your activation class as module\.Class"),
        ("torch.nn.Tanh", ["+activation.foo=1"], r"torch\.nn\.Tanh cannot take \['foo'\]"),
    ],
)
@pytest.mark.slow
def test_a_bad_target_names_the_target_and_the_reason(user_module, target, extra, reason):
    given = target.format(m=user_module)
    with pytest.raises(ConfigError) as info:
        check_config(compose_config(["activation=custom", f"activation._target_={given}", *extra]))
    assert info.value.key == "activation._target_"
    assert re.search(reason.format(m=user_module), str(info.value))


@pytest.mark.slow
def test_a_missing_module_is_one_line_exit_2_and_nothing_written(tmp_path):
    args = ["activation=custom", "activation._target_=no_such_module.Snake", "hydra.run.dir=run"]
    result = run_cli(args, cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "adaptrun: error: activation._target_: cannot import no_such_module.Snake: "
        f"no module 'no_such_module' in the current folder ({tmp_path}) or the installed "
        "packages; run adaptrun from the folder that holds no_such_module.py, or pip install "
        "the package"
    ]
    assert not (tmp_path / "run").exists()


# What no module outside a registry entry may do: compare a task's, model's, dataset's,
# activation family's, optimizer's, protocol's or metric's name (the old
# `task != "classification"`, `name in ("mlp", "mlp1")`, `variant == "fixed"`,
# `optimizer["name"] == "molf"`, `protocol == "kfold"`, `isinstance(m, (AdAct, APL))`).
NAME_BRANCH = re.compile(
    r"""\b(task|model|dataset|family|variant|optimizer|protocol|metric|name)\b[]"'a-z_.[]*"""
    r"""(\s*[=!]=|\s+not in|\s+in)\s*[("'A-Z]"""
    r"""|isinstance\([^)]*\b(SlopeActivation|AdAct|APL|Rational|ClassificationTask|"""
    r"""FunctionTask|BurgersTask|MLP1?|VGG|LeNet)\b"""
)
# what a line may test that is no entry's name: membership of a constant collection (the
# valid choices, a registry), a loop, a goal's direction, the loop's own training loss
ALLOWED = re.compile(r"^\s*for |\bin [A-Z][A-Z_]+\b|== \"(max|min)\"|\"train_loss\"")


def test_the_runner_asks_capabilities_never_names():
    """Every module of the package but those that register entries (an entry may look
    at its own options)."""
    found = []
    for path in sorted((REPO / "adaptrun").rglob("*.py")):
        text = path.read_text()
        if ".register(" in text:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if line.lstrip().startswith("#") or ALLOWED.search(line):
                continue
            if NAME_BRANCH.search(line):
                found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert found == []


@pytest.mark.slow
def test_a_users_own_option_sweeps_beside_the_papers_families(user_module):
    folder = Path("my_conf/activation")
    folder.mkdir(parents=True)
    (folder / "snake.yaml").write_text(
        f"name: snake\nfamily: custom\n_target_: {user_module}.Snake\nalpha: 0.5\n"
    )
    args = ["-m", "activation=relu,snake", "hydra.searchpath=[file://my_conf]"]
    result = run_cli([*args, "trainer.epochs=1", "hydra.sweep.dir=sweep"], cwd=Path.cwd())
    assert result.returncode == 0, result.stderr
    assert "2 completed" in result.stderr
    snake_run = read_metrics(Path("sweep/activation=snake,trainer.epochs=1"))
    assert (
        snake_run["hparams"]["activation"] == "snake"
        and snake_run["hparams"]["activation.alpha"] == 0.5
    )
