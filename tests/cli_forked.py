"""Run ``adaptrun`` many times from one process that has imported it once (the tests'
``run_cli``): each command runs the real entry point (``adaptrun.cli.main.main``) in a
forked child with its own argv, folder, environment, stdout and stderr, so the suite pays
torch's import (and the rest of what a run imports: torch's compiler, which its optimizers
load, TensorBoard, matplotlib) once per test worker instead of once per command. Only the
imports are shared: the server itself never runs a command, so each child starts from the
state a fresh ``python -m adaptrun`` would have after its imports.

    python cli_forked.py --serve   (one {"args": [...], "cwd": ..., "out": ..., "env": {...}}
                                    per line on stdin; replies on stdout: the child's pid,
                                    then its exit code)
"""

from __future__ import annotations

import json
import os
import sys

import torch._dynamo  # noqa: F401 (torch.optim loads it on a run's first step)
from torch.utils.tensorboard import SummaryWriter  # noqa: F401

import adaptrun.cli.hydra_callbacks
import adaptrun.runner.run  # noqa: F401
from adaptrun.cli.main import main
from adaptrun.core.figures import pyplot
from adaptrun.core.registry import load_plugins

pyplot()
load_plugins()


def start(case: dict) -> int:
    """Fork a child that runs one adaptrun command, as from a shell; its pid."""
    pid = os.fork()
    if pid:
        return pid
    os.setpgid(0, 0)  # its own process group: a timeout stops it and what it started
    os.chdir(case["cwd"])
    os.environ.clear()
    os.environ.update(case["env"])
    for fd, name in ((1, "stdout"), (2, "stderr")):
        handle = os.open(f"{case['out']}.{name}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(handle, fd)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    sys.argv = ["adaptrun", *case["args"]]
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def finish(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


for line in sys.stdin:
    pid = start(json.loads(line))
    print(pid, flush=True)
    print(finish(pid), flush=True)
