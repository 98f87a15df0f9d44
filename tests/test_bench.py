"""The benchmarks (scripts/bench.py, adaptrun-doctor) measure every section and report
ratios against their own baselines."""

from __future__ import annotations

import pytest
import torch

from adaptrun.tools import benchmarks as bench


@pytest.mark.slow
def test_every_section_measures_and_reports_ratios():
    args = bench.Sizes(small=True, batch=4, repeat=1, images=16, workers=0, runs=2)
    device = torch.device("cpu")
    fast = bench.Fast(device)
    rows = bench.activation_rows(args, device, fast)
    assert {r[0] for r in rows} == {"3-VGG", "LeNet", "MLP"}  # small: no PreActResNet18
    assert len(rows) == 3 * len(bench.VARIANTS)
    assert all(float(r[4]) == 1.0 for r in rows if r[1] == "relu (fixed)")
    assert all(float(r[4]) > 0 for r in rows)
    runner = bench.runner_rows(args, device, fast)
    assert runner[0][2] == "1.00" and all(float(r[2]) > 0 for r in runner)
    stack = bench.stack_rows(args, device)
    assert stack[0][0] == "2 runs one after another" and float(stack[1][2]) > 0
    text = bench.table(["a", "b"], [[1, 2]])
    assert text.splitlines() == ["| a | b |", "|---|---|", "| 1 | 2 |"]


@pytest.mark.slow
def test_the_sweep_benchmark_times_both_sweeps_and_their_steps():
    import re
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).parents[1] / "scripts" / "bench_sweep.py"
    done = subprocess.run(
        [sys.executable, str(script), "--small", "--timing-steps", "10"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = {
        cells[0]: [float(c) for c in cells[1:]]
        for line in done.stdout.splitlines()
        if line.startswith("| ")
        and (cells := [c.strip() for c in line.strip("|").split("|")])
        and cells[0] in ("whole sweep", "training steps alone")
    }
    assert all(value > 0 for row in rows.values() for value in row)
    basic, stacked, ratio = rows["whole sweep"]
    assert ratio == pytest.approx(basic / stacked, rel=0.05)
    ceiling = float(re.search(r"ceiling .*: ([\d.]+)x", done.stdout).group(1))
    # the stacked sweep cannot take less than its own steps
    assert ceiling >= rows["whole sweep"][2]
    assert "4 runs:" in done.stdout
