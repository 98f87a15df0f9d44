"""matplotlib for the figures runs draw, imported when the first one is drawn."""

from __future__ import annotations

from types import ModuleType


def pyplot() -> ModuleType:
    """pyplot on the file-only Agg backend. Imported on first use, not with the task
    modules: it costs a run half a second of start-up, and a refused command (or a run
    that draws nothing) would pay it for nothing."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
