"""The loop, its steps, optimizers, MOLF, stacked runs; imports records and below."""

from adaptrun.core.registry import discover

discover(__name__)  # every optimizer entry (MOLF registers itself in molf.py)
