"""The adaptrun command end to end, in subprocesses, as a user runs it."""

from __future__ import annotations

import copy
import re
import subprocess
import sys

import pytest
from conftest import events, read_metrics, run_cli, run_dirs
from google.protobuf import json_format
from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.hparams import backend_context, metadata

METRIC_KEYS = {
    "status",
    "error",
    "steps",
    "epochs",
    "wall_seconds",
    "final_train_loss",
    "final_test_acc",
    "best_test_acc",
    "final_test_loss",
    "convergence",
    "auc_log10_train_loss",
    "params",
    "hparams",
}


@pytest.mark.slow
def test_default_run_trains_digits_and_writes_a_complete_run_folder(tmp_path):
    result = run_cli([], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (run_dir,) = run_dirs(tmp_path / "outputs")
    metrics = read_metrics(run_dir)
    assert metrics.keys() >= METRIC_KEYS
    assert metrics["status"] == "completed" and metrics["error"] is None
    assert metrics["final_test_acc"] >= 0.9
    assert metrics["steps"] == 20 * 23 and metrics["epochs"] == 20
    assert metrics["convergence"]["test_acc"]["0.9"]["step"] <= metrics["steps"]
    assert metrics["params"] == {
        "total": 64 * 64 + 64 + 64 * 64 + 64 + 64 * 10 + 10,
        "activation": 0,
    }
    # one step's FLOPs, batch 64: forward 2*64*(64*64 + 64*64 + 64*10), the weight
    # gradients as many again, the input gradients of the two upper layers 2*64*(64*64 + 64*10)
    assert metrics["flops_per_step"] == 2 * 2 * 64 * (64 * 64 * 2 + 640) + 2 * 64 * (4096 + 640)
    assert metrics["stacked_runs"] == 1  # trained alone
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    assert (run_dir / "adaptrun.log").read_text().count("epoch ") >= 20

    acc = events(run_dir)
    scalars = set(acc.Tags()["scalars"])
    assert {"train/loss", "test/loss", "test/acc", "train/lr", "train/slope_recovery"} <= scalars
    assert "zz_summary/steps_to_test_acc_0.9" in scalars
    # the one-point summary scalars sort after every curve, whatever TensorBoard's order
    categories = sorted({tag.split("/")[0] for tag in scalars})
    assert categories[-1] == "zz_summary" and sorted(categories, key=str.casefold) == categories
    assert [e.step for e in acc.Scalars("test/acc")] == [23 * k for k in range(1, 21)]
    assert acc.Scalars("test/acc")[-1].value == pytest.approx(metrics["final_test_acc"])
    hparams = acc.PluginTagToContent("hparams")
    assert {"_hparams_/experiment", "_hparams_/session_start_info"} <= hparams.keys()
    # Custom Scalars: the loss, the task's primary metric, its others and the lr first
    [config] = acc.Tensors("custom_scalars__config__")
    layout = layout_pb2.Layout.FromString(config.tensor_proto.string_val[0])
    charts = {c.title: [chart.title for chart in c.chart] for c in layout.category}
    assert list(charts) == ["compare runs", "activations"]
    assert charts["compare runs"] == ["training loss", "test acc", "test loss", "learning rate"]
    first = layout.category[0].chart
    assert [list(c.multiline.tag) for c in first[:2]] == [["^train/loss$"], ["^test/acc$"]]
    # Not a terminal: no progress bar in the output.
    assert "step/s" not in result.stderr and "it/s" not in result.stderr


@pytest.mark.slow
def test_multirun_names_each_run_folder_by_its_overrides(tmp_path):
    args = ["-m", "activation=relu,neuronwise_slope", "seed=0,1", "trainer.epochs=2"]
    result = run_cli(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    names = sorted(d.name for d in run_dirs(tmp_path / "outputs" / "multirun"))
    assert names == [
        "activation=neuronwise_slope,seed=0,trainer.epochs=2",
        "activation=neuronwise_slope,seed=1,trainer.epochs=2",
        "activation=relu,seed=0,trainer.epochs=2",
        "activation=relu,seed=1,trainer.epochs=2",
    ]
    for run_dir in run_dirs(tmp_path / "outputs"):
        assert read_metrics(run_dir)["status"] == "completed"
    slopes = events(next(d for d in run_dirs(tmp_path) if "neuronwise" in d.name))
    assert {"slopes/net.2", "slopes/net.4"} <= set(slopes.Tags()["histograms"])
    # HParams: the sweep writes the dashboard's columns once, covering what any run varies;
    # each run writes its session with typed values under a trial name of its own.
    sweep = next((tmp_path / "outputs" / "multirun").iterdir())
    plugin = EventMultiplexer(size_guidance={"scalars": 0})
    plugin.AddRunsFromDirectory(str(sweep))
    plugin.Reload()
    content = plugin.PluginRunToTagToContent("hparams")
    assert [run for run, tags in content.items() if "_hparams_/experiment" in tags] == ["."]
    experiment = metadata.parse_experiment_plugin_data(content["."]["_hparams_/experiment"])
    domain = {h.name: [json_format.MessageToDict(v) for v in h.domain_discrete.values]
              for h in experiment.hparam_infos}  # fmt: skip
    assert domain["seed"] == [0, 1]
    assert domain["activation"] == ["neuronwise_slope", "relu"]
    # relu accepts slope_recovery and applies it to nothing: only the slope family's is shown
    assert domain["activation.slope_recovery"] == [1]
    assert "epochs" not in domain and domain["trainer.epochs"] == [2]
    # the keys the sweep varied and the seed first, as TensorBoard's backend orders them
    # (the dashboard shows the first five); the primary metric first; no empty column
    # (no run holds out a validation split)
    first = copy.deepcopy(experiment)
    backend_context._sort_and_reduce_to_hparams_limit(first, 5)
    assert [h.name for h in first.hparam_infos][:2] == ["activation", "seed"]
    metric_tags = [m.name.tag for m in experiment.metric_infos]
    first_three = ["final_test_acc", "best_test_acc", "final_train_loss"]
    assert metric_tags[:3] == [f"zz_summary/{tag}" for tag in first_three]
    assert "zz_summary/epochs" in metric_tags and not any("val_" in t for t in metric_tags)
    assert len(list(sweep.glob("events.out.tfevents.*"))) == 1  # the planned one replaced
    trials = {}
    for run, tags in content.items():
        if run != ".":
            start = metadata.parse_session_start_info_plugin_data(
                tags["_hparams_/session_start_info"]
            )
            trials[start.group_name] = start.hparams["seed"].number_value
    # the job's number (summary.md's) and its overrides, short enough to read in the column
    assert trials == {
        "0: relu seed=0 epochs=2": 0, "1: relu seed=1 epochs=2": 1,
        "2: neuronwise_slope seed=0 epochs=2": 0, "3: neuronwise_slope seed=1 epochs=2": 1,
    }  # fmt: skip


def test_cfg_job_prints_the_composed_config(tmp_path):
    result = run_cli(
        ["--cfg", "job", "activation=neuronwise_slope", "activation.base=tanh"], cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "variant: neuronwise" in result.stdout and "base: tanh" in result.stdout
    assert not (tmp_path / "outputs").exists()


@pytest.mark.slow
def test_unknown_group_option_lists_the_valid_ones(tmp_path):
    result = run_cli(["activation=neuronwise_slop"], cwd=tmp_path)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(
        "adaptrun: error: activation=neuronwise_slop: no such option; "
        "did you mean activation=neuronwise_slope"
    )
    for option in ("relu", "neuronwise_slope", "layerwise", "global_slope", "prelu"):
        assert f" {option}," in line


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("activation.n=0.5", "activation.n"),
        ("trainer.batch_size=0", "trainer.batch_size"),
        ("optimizer.lr=-0.1", "optimizer.lr"),
        ("activation.base=swish", "activation.base"),
    ],
)
@pytest.mark.slow
def test_impossible_values_fail_before_training_with_one_line(tmp_path, override, key):
    result = run_cli([override], cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"adaptrun: error: {key}:"), result.stderr
    assert not (tmp_path / "outputs").exists()  # nothing half-written


@pytest.mark.slow
def test_unwritable_output_folder_fails_clearly(tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("")
    result = run_cli([f"hydra.run.dir={blocker}/run"], cwd=tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "cannot be written" in line and "hydra.run.dir" in line


@pytest.mark.slow
def test_piecewise_activations_run_and_draw_their_curves(tmp_path):
    args = ["-m", "activation=adact,apl", "trainer.epochs=3", "trainer.figures_at=[23]"]
    result = run_cli(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    runs = {read_metrics(d)["hparams"]["activation"]: d for d in run_dirs(tmp_path / "outputs")}
    assert sorted(runs) == ["adact", "apl"]
    for name, run_dir in runs.items():
        metrics = read_metrics(run_dir)
        assert metrics["status"] == "completed" and metrics["final_test_acc"] > 0.8
        per_unit = 5 if name == "adact" else 2 * 5  # hinge values; APL's a and b
        assert metrics["params"]["activation"] == (64 + 64) * per_unit
        images = events(run_dir).Tags()["images"]
        assert images == ["figures/activations"]  # one image, a panel per layer
        assert [i.step for i in events(run_dir).Images(images[0])] == [23, 69]


@pytest.mark.slow
def test_a_diverged_run_says_so_and_why_in_one_line(tmp_path):
    args = ["optimizer=sgd", "optimizer.lr=1e30", "trainer.log_every=1", "hydra.run.dir=run"]
    result = run_cli(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert re.fullmatch(
        r"adaptrun: run diverged: the training loss was (nan|inf) \(penalty 0\) at step \d+; "
        r"metrics\.json in .*run",
        lines[0],
    )
    assert read_metrics(tmp_path / "run")["error"].startswith("the training loss was")


@pytest.mark.slow
def test_log_lines_go_around_the_progress_bar_on_a_terminal(tmp_path):
    """On a terminal tqdm draws a bar; every log line must start a line of its own, not
    continue the bar's (the first one, "training ...", used to)."""
    import fcntl
    import os
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    args = ["trainer.epochs=10", "trainer.eval_every_epochs=5", "hydra.run.dir=run"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "adaptrun", *args], cwd=tmp_path, stdout=slave, stderr=slave
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert proc.wait(timeout=60) == 0
    output = b"".join(chunks).decode()
    assert "%|" in output  # the bar was drawn
    pieces = re.split(r"[\r\n]", output)
    records = [p for p in pieces if "][adaptrun." in p]
    assert len(records) >= 3  # training ..., two evaluations, completed
    assert all(p.startswith("[20") for p in records), [p for p in records if p[:3] != "[20"]


@pytest.mark.parametrize(
    "args", [["--help"], ["--cfg", "job", "activation=global"], ["--help", "optimizer"]]
)
def test_printing_commands_never_import_torch_or_matplotlib(tmp_path, args):
    """--help, --cfg and shell completion compose the config without the typed schemas
    (torch is imported only when a run starts)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "adaptrun", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()}
    assert "hydra" in imported
    assert not imported & {"torch", "matplotlib", "torchvision", "sklearn"}


@pytest.mark.slow
def test_a_run_imports_only_what_it_uses(tmp_path):
    """The default run draws no figure and reads no report: no matplotlib, pandas,
    scipy.stats, scikit-learn or torchvision on its path (the import list, not a time).
    torch._dynamo is there: torch.optim loads it on an optimizer's first call."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "adaptrun", "trainer.epochs=1",
         f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()}
    assert {"torch", "hydra", "tensorboard"} <= imported
    assert not imported & {"matplotlib", "pandas", "scipy.stats", "sklearn", "torchvision"}


def test_help_for_a_group_lists_its_options_and_the_keys_each_sets(tmp_path):
    from adaptrun.config.options import config_dir, options

    result = run_cli(["--help", "activation"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "activation options (activation=OPTION; * marks the default):"
    for option in options(config_dir()):
        if option.group == "activation":
            mark = "*" if option.default else " "
            assert f"  {mark} {option.name:<22} {option.description}" in lines
    assert any(
        line.startswith(
            "  neuronwise_slope: name=neuronwise_slope, family=slope, variant=neuronwise"
        )
        and "slope_recovery=1.0" in line
        for line in lines
    )
    assert lines[-1] == "Everything an option composes to: adaptrun --cfg job activation=OPTION"
    wrong = run_cli(["--help", "activations"], cwd=tmp_path)
    assert wrong.returncode == 2 and wrong.stdout == ""
    assert wrong.stderr == (
        "adaptrun: error: no option group 'activations'; groups: activation, augmentation, "
        "dataset, experiment, model, optimizer, protocol, task\n"
    )


def test_help_lists_every_option_with_what_it_is(tmp_path):
    from adaptrun.config.options import config_dir, options

    result = run_cli(["--help"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for option in options(config_dir()):
        mark = "*" if option.default else " "
        assert f"   {mark} {option.name:<22} {option.description}" in result.stdout
    assert "   * relu " in result.stdout and "rational" in result.stdout
    assert "adaptrun --hydra-help" in result.stdout
