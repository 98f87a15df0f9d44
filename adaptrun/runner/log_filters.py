"""Logging filters wired into Hydra's job logging by conf/config.yaml."""

from __future__ import annotations

import logging


class SkipFileOnly(logging.Filter):
    """Keep records logged with ``extra={"file_only": True}`` out of the console.

    Used for a failed run's reason: the CLI prints it once on stderr, the run's log
    file keeps it too.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, "file_only", False)
