"""The benchmarks (scripts/bench.py, adaptrun-doctor) measure every section and report
ratios against their own baselines."""

from __future__ import annotations

import torch

from adaptrun import benchmarks as bench


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
