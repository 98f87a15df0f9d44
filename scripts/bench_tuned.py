"""A tuned comparison, whole command against whole command: the tuned sweeper with
stacking (``hydra/sweeper=tuned``: 4 activations x 6 learning rates x 3 tuning seeds,
then 5 evaluation seeds at each activation's choice) against the same 92 runs one by one
through Hydra's basic sweeper (the search grid, then one command per activation at the
rate the tuned sweep chose). Target: the tuned sweeper at least 4x faster.

    python scripts/bench_tuned.py [--epochs 2000] [--repeats 1]

Each repeat runs the tuned command, then the basic ones, in fresh folders, and compares
the evaluation runs' final test errors: a stacked run's step equals its twin's to float
rounding, which long training at a high rate can amplify.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET = 4.0
ACTIVATIONS = ["tanh", "global", "layerwise", "neuronwise"]
LOW, HIGH, BUDGET, TUNING_SEEDS, SEEDS = 1e-4, 3e-3, 6, 3, 5


def adaptrun(args: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "adaptrun", "-m", *args], check=True, cwd=cwd,
                   capture_output=True)  # fmt: skip
    return time.perf_counter() - start


def finals(folder: Path) -> dict[tuple[str, str], float]:
    """(activation, seed) -> final test rel L2 of a sweep's evaluation runs."""
    found = {}
    for path in folder.rglob("metrics.json"):
        if "tune" in path.parts or path.parent.name.startswith("stack-"):
            continue
        parts = dict(p.split("=", 1) for p in path.parent.name.split(",") if "=" in p)
        metrics = json.loads(path.read_text())
        if "final_test_rel_l2" in metrics:
            found[(parts["activation"], parts["seed"])] = metrics["final_test_rel_l2"]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    common = ["experiment=jagtap_discontinuous", f"trainer.epochs={args.epochs}"]
    seeds = ",".join(map(str, range(SEEDS)))
    for repeat in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            tuned = adaptrun([
                *common, "hydra/sweeper=tuned", f"activation={','.join(ACTIVATIONS)}",
                f"tune.optimizer.lr=tag(log,interval({LOW},{HIGH}))",
                f"hydra.sweeper.budget={BUDGET}", f"hydra.sweeper.seeds={TUNING_SEEDS}",
                f"seed={seeds}", f"hydra.sweep.dir={root / 'tuned'}",
            ], root)  # fmt: skip
            record = json.loads((root / "tuned" / "tuning.json").read_text())
            chosen = {
                next(o for o in c["overrides"] if o.startswith("activation="))[11:]: c["chosen"][0]
                for c in record["columns"]
            }
            # the same candidates, as the tuned sweep recorded them
            rates = [c["point"][0].split("=", 1)[1] for c in record["columns"][0]["candidates"]]
            basic = adaptrun([
                *common, f"activation={','.join(ACTIVATIONS)}",
                f"optimizer.lr={','.join(rates)}", "dataset.n_val=1000", "trainer.test=false",
                "trainer.figures=false", "trainer.figures_at=[]",  # as the tuned search's runs
                f"seed={','.join(str(1000 + k) for k in range(TUNING_SEEDS))}",
                f"hydra.sweep.dir={root / 'basic' / 'tune'}",
            ], root)  # fmt: skip
            for activation, rate in chosen.items():
                basic += adaptrun([
                    *common, f"activation={activation}", rate, f"seed={seeds}",
                    f"hydra.sweep.dir={root / 'basic' / activation}",
                ], root)  # fmt: skip
            ours, theirs = finals(root / "tuned"), finals(root / "basic")
            gaps = sorted(abs(ours[k] - theirs[k]) / abs(theirs[k]) for k in theirs)
            runs = len(ACTIVATIONS) * (BUDGET * TUNING_SEEDS + SEEDS)
            print(f"repeat {repeat}: {runs} runs of {args.epochs} steps; chosen: {chosen}")
            print(f"  tuned sweeper, stacked: {tuned:8.1f} s")
            print(f"  basic sweeper, one by one: {basic:8.1f} s")
            print(f"  speed-up: {basic / tuned:.2f}x (target {TARGET}x)")
            median, worst = gaps[len(gaps) // 2], gaps[-1]
            print(f"  the {len(theirs)} evaluation runs' final test rel L2, stacked against "
                  f"alone: median gap {median:.1e}, worst {worst:.1e} relative")  # fmt: skip


if __name__ == "__main__":
    main()
