"""Turn a sweep folder into the papers' tables and loss plots (``adaptrun-report``)."""

from adaptrun.report.cli import report

__all__ = ["report"]
