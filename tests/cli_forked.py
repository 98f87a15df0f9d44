"""Run ``adaptrun`` many times from one process that has imported it once: each command
runs the real entry point (``adaptrun.cli.main.main``) in a forked child with its own argv,
folder, stdout and stderr, so a check of many bad inputs pays torch's import once.

    python cli_forked.py CASES_JSON   (a list of {"args": [...], "cwd": ..., "out": ...})
"""

from __future__ import annotations

import json
import os
import sys

import adaptrun.cli.hydra_callbacks
import adaptrun.runner.run  # noqa: F401
from adaptrun.cli.main import main
from adaptrun.core.registry import load_plugins

load_plugins()
with open(sys.argv[1]) as f:
    cases = json.load(f)
for case in cases:
    pid = os.fork()
    if pid == 0:  # the child: one adaptrun command, as from a shell
        os.chdir(case["cwd"])
        for fd, name in ((1, "stdout"), (2, "stderr")):
            handle = os.open(f"{case['out']}.{name}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(handle, fd)
        sys.argv = ["adaptrun", *case["args"]]
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    with open(f"{case['out']}.rc", "w") as f:
        f.write(str(os.waitstatus_to_exitcode(status)))
