"""scripts/bench.py runs every section and reports ratios against its own baseline."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent


def load_bench():
    spec = importlib.util.spec_from_file_location("bench", REPO / "scripts" / "bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_section_measures_and_reports_ratios():
    bench = load_bench()
    args = argparse.Namespace(small=True, batch=4, repeat=1, images=16, workers=0, runs=2)
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
