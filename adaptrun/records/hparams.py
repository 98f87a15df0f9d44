"""What a run is compared by, for metrics.json and TensorBoard's HParams dashboard.

Values keep their config types (``seed`` is 0, not "0") under their full dotted keys, so
no setting appears twice. The dashboard's columns come from one experiment summary:
a sweep writes it once, in its own folder, with every value any of its runs takes, and
its runs write only their session start and end; a single run writes its own. Written
with TensorBoard's hparams protos (its summary_v2 helpers need no TensorFlow).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from omegaconf import DictConfig, OmegaConf
from tensorboard.compat.proto import summary_pb2
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
from tensorboard.plugins.hparams import summary_v2 as hp

from adaptrun.activations import inert_settings

# activation.impl_used, known when a run ends: no kernel ran, kernels only, or some kernel
# configuration failed its self-check and the PyTorch reference served it
SUMMARY = "zz_summary"  # one-point scalars: last in TensorBoard's list, after the curves
STATUS = {
    "completed": api_pb2.STATUS_SUCCESS,
    "diverged": api_pb2.STATUS_FAILURE,
    "failed": api_pb2.STATUS_FAILURE,
    "interrupted": api_pb2.STATUS_UNKNOWN,
}


def _scalar(value: Any) -> int | float | str | bool:
    """A config value as the dashboard can show it: lists and nulls as their JSON."""
    if isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(OmegaConf.to_container(value) if OmegaConf.is_config(value) else value)


def describe(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The settings people compare runs by: what ran (the composed names), the
    activation's own settings, the optimizer's rate, the budget and the seed."""
    act = cfg["activation"]
    inert = {f"activation.{key}" for key in inert_settings(act)}
    values: dict[str, Any] = {
        "dataset": cfg["dataset"]["name"],
        "model": cfg["model"]["name"],
        "activation": act["name"],
    }
    for key, value in act.items():
        if key not in ("name", "impl") and isinstance(value, (int, float, str, bool)):
            values[f"activation.{key}"] = value
    for key in inert:  # accepted so one sweep can hold the family; it applies to nothing
        values.pop(key, None)
    values["optimizer"] = cfg["optimizer"]["name"]
    if "lr" in cfg["optimizer"]:  # an optimizer that solves for its steps has none
        values["optimizer.lr"] = cfg["optimizer"]["lr"]
    values["trainer.batch_size"] = cfg["trainer"]["batch_size"]
    values["trainer.epochs"] = cfg["trainer"]["epochs"]
    values["seed"] = cfg["seed"]
    return values


def run_hparams(cfg: DictConfig, overrides: Iterable[str]) -> dict[str, Any]:
    """``describe`` plus every key the command line set (``key=value`` lines, or keys),
    with the value and type the composed config has: a group choice, such as
    ``activation``, as its name; a preset that merges into the whole config
    (``experiment=jagtap_burgers``) as given."""
    values = describe(cfg)
    inert = {f"activation.{key}" for key in inert_settings(cfg["activation"])}
    for given in overrides:
        key, _, choice = given.lstrip("+~").partition("=")
        if key.startswith("hydra") or "/" in key or key in inert:
            continue
        node = OmegaConf.select(cfg, key, default=None)
        if isinstance(node, DictConfig):
            node = node.get("name")
        if node is None and choice:
            values[key] = choice  # no node of its own: a global preset's name
        elif node is not None or key not in values:
            values[key] = _scalar(node)
    return values


def domain(runs: Sequence[Mapping[str, Any]]) -> list[hp.HParam]:
    """Every key any run has, with every value it takes (one type per key: numbers mixed
    with text become text)."""
    keys: dict[str, list[Any]] = {}
    for values in runs:
        for key, value in values.items():
            keys.setdefault(key, [])
            if value not in keys[key]:
                keys[key].append(value)
    params = []
    for key, seen in keys.items():
        kinds = {_kind(v) for v in seen}
        kind = kinds.pop() if len(kinds) == 1 else str
        params.append(hp.HParam(key, hp.Discrete(sorted({kind(v) for v in seen}))))
    return params


def _kind(value: Any) -> type:
    if isinstance(value, bool):
        return bool
    return float if isinstance(value, (int, float)) else str


def metric_tags(
    goals: Iterable[str], targets: Mapping[str, Sequence[float]], primary: str = "train_loss"
) -> list[str]:
    """The one-point summary scalars a run writes (``summary_scalars``) for these goals,
    the task's primary metric first: the dashboard shows the first few columns."""
    tags = []
    for g in dict.fromkeys([primary, "train_loss", *goals]):  # the loop's loss: final only
        tags += ["final_train_loss"] if g == "train_loss" else [f"final_{g}", f"best_{g}"]
    tags += ["auc_log10_train_loss", "epochs"]
    for name, values in targets.items():
        tags += [f"{unit}_to_{name}_{float(t):g}" for t in values for unit in ("steps", "epochs")]
    return [f"{SUMMARY}/{t}" for t in tags]


def summary_scalars(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The one-point scalars of a run's metrics.json (final and best values, epochs
    trained, steps and epochs to each target reached), under their dashboard tags."""
    scalars: dict[str, float] = {}
    for key, value in metrics.items():
        one_point = key.startswith(("final_", "best_")) and not key.endswith("_step")
        if (one_point or key in ("auc_log10_train_loss", "epochs")) and isinstance(
            value, (int, float)
        ):
            scalars[f"{SUMMARY}/{key}"] = float(value)
    for name, reached in (metrics.get("convergence") or {}).items():
        for target, where in reached.items():
            if where is not None:
                scalars[f"{SUMMARY}/steps_to_{name}_{target}"] = float(where["step"])
                scalars[f"{SUMMARY}/epochs_to_{name}_{target}"] = float(where["epoch"])
    return scalars


def differing(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The keys whose value differs between rows (absent where another has it counts),
    in the order they first appear."""
    keys: dict[str, None] = {}
    for row in rows:
        keys.update(dict.fromkeys(row))
    return [k for k in keys if len({_seen(row, k) for row in rows}) > 1]


def follows(key: str, by: Iterable[str], rows: Sequence[Mapping[str, Any]]) -> bool:
    """Whether ``key``'s value is fixed by the ``by`` keys' (dataset.num_classes by
    dataset.name; the slope family's variant by the activation): it says nothing more."""
    by = list(by)
    seen: dict[str, str] = {}
    for row in rows:
        ident = json.dumps([row.get(k) for k in by], sort_keys=True)
        if seen.setdefault(ident, _seen(row, key)) != _seen(row, key):
            return False
    return True


def _seen(row: Mapping[str, Any], key: str) -> str:
    return json.dumps(row.get(key), sort_keys=True)


def varying(runs: Sequence[Mapping[str, Any]]) -> set[str]:
    """The keys the runs were varied by, and the seed: the columns the dashboard puts
    first. A key whose value follows from the activation's (the slope family's variant,
    absent for a fixed one) is left out: it says nothing the activation column does not."""
    differ = differing(runs)
    return {"seed"} | {
        k for k in differ if k == "activation" or not follows(k, ["activation"], runs)
    }


def experiment(
    params: list[hp.HParam], metrics: Iterable[str], differs: Iterable[str] = ("seed",)
) -> summary_pb2.Summary:
    """The dashboard's columns: the hyperparameters' domain and the metric tags, in this
    order. ``differs``: the hyperparameters TensorBoard lists first (it sorts the keys
    that differ between runs before the rest, each part by name, and shows the first
    five): the swept keys and the seed, not whatever sorts first."""
    summary = hp.hparams_config_pb(hparams=params, metrics=[hp.Metric(tag) for tag in metrics])
    content = summary.value[0].metadata.plugin_data.content
    config = metadata.parse_experiment_plugin_data(content)
    shown = set(differs)
    for info in config.hparam_infos:
        info.differs = info.name in shown
    return _summary(metadata.EXPERIMENT_TAG, plugin_data_pb2.HParamsPluginData(experiment=config))


def session_start(values: Mapping[str, Any], trial: str) -> summary_pb2.Summary:
    """One run's values; ``trial`` names it in the dashboard (its folder: seeds differ)."""
    info = plugin_data_pb2.SessionStartInfo(group_name=trial, start_time_secs=time.time())
    for key, value in values.items():
        if isinstance(value, bool):
            info.hparams[key].bool_value = value
        elif isinstance(value, (int, float)):
            info.hparams[key].number_value = value
        else:
            info.hparams[key].string_value = str(value)
    data = plugin_data_pb2.HParamsPluginData(session_start_info=info)
    return _summary(metadata.SESSION_START_INFO_TAG, data)


def session_end(status: str) -> summary_pb2.Summary:
    info = plugin_data_pb2.SessionEndInfo(status=STATUS.get(status, api_pb2.STATUS_UNKNOWN))
    info.end_time_secs = time.time()
    return _summary(
        metadata.SESSION_END_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_end_info=info)
    )


def _summary(tag: str, data: plugin_data_pb2.HParamsPluginData) -> summary_pb2.Summary:
    meta = metadata.create_summary_metadata(data)
    return summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, metadata=meta)])
