"""Start-up: ``adaptrun trainer.epochs=1`` end to end against the bare imports it cannot
avoid (``python -c "import torch, hydra, omegaconf"``), and against those plus the
compiler torch.optim loads on an optimizer's first call (``torch._dynamo``), interleaved
in one run. Target: the run at most 1.5x the bare imports.

    python scripts/bench_startup.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time

TARGET = 1.5
COMMANDS = {
    "python -c 'import torch, hydra, omegaconf'": ["-c", "import torch, hydra, omegaconf"],
    "... and torch._dynamo (torch.optim's first call)": [
        "-c", "import torch, hydra, omegaconf, torch._dynamo"
    ],
    "adaptrun trainer.epochs=1 (the default digits run)": ["-m", "adaptrun", "trainer.epochs=1"],
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    best = dict.fromkeys(COMMANDS, float("inf"))
    for _ in range(args.repeats):  # interleaved: the machine's moments fall on all
        for name, argv in COMMANDS.items():
            with tempfile.TemporaryDirectory() as folder:
                extra = [f"hydra.run.dir={folder}/run"] if "-m" in argv else []
                start = time.perf_counter()
                subprocess.run([sys.executable, *argv, *extra], check=True, cwd=folder,
                               capture_output=True)  # fmt: skip
                best[name] = min(best[name], time.perf_counter() - start)
    bare = best[next(iter(COMMANDS))]
    print(f"best of {args.repeats} interleaved repeats\n")
    print("| command | seconds | vs bare imports |")
    print("|---|---|---|")
    for name, seconds in best.items():
        print(f"| {name} | {seconds:.2f} | {seconds / bare:.2f}x |")
    ratio = best[list(COMMANDS)[-1]] / bare
    verdict = "ok" if ratio <= TARGET else "above target"
    print(f"\nrun / bare imports: {ratio:.2f}x (target <= {TARGET}x: {verdict})")


if __name__ == "__main__":
    main()
