"""Trimming a run folder's TensorBoard event files before a resumed run writes on.

An interrupted run may have logged points after its last checkpoint; the resumed run
logs those steps again. Dropping everything written after the checkpoint keeps each
point exactly once for every reader (TensorBoard, tbparse), not only for readers that
honour TensorBoard's purge markers.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import BinaryIO

from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.summary.writer.record_writer import RecordWriter

from adaptrun.core.files import replace_atomically

log = logging.getLogger(__name__)


def event_files(run_dir: Path) -> list[Path]:
    """The run's own event files (not those of sub-folders), in the order TensorBoard reads."""
    return sorted(p for p in Path(run_dir).glob("events.out.tfevents.*") if p.is_file())


def truncate_events(run_dir: Path, after: float | None) -> int:
    """Drop events stamped later than ``after`` (None: every event); returns how many.

    Each file is rewritten to a temporary name and renamed over the original, so a
    crash here leaves every file either as it was or trimmed; files left empty go.
    """
    dropped = 0
    for path in event_files(run_dir):
        # raw records, written back byte for byte (the parsing loader rewrites scalars)
        records = [(raw, Event.FromString(raw)) for raw in RawEventFileLoader(str(path)).Load()]
        keep = [(raw, e) for raw, e in records if after is not None and e.wall_time <= after]
        if len(keep) == len(records):
            continue
        dropped += len(records) - len(keep)
        if not any(e.WhichOneof("what") != "file_version" for _, e in keep):
            path.unlink()
            continue
        # the temporary name has no "tfevents" in it, so TensorBoard does not read it
        write = functools.partial(_write_records, [raw for raw, _ in keep])
        replace_atomically(path, write, ".events-trim.tmp")
    if dropped:
        log.info("dropped %d TensorBoard events logged after the checkpoint", dropped)
    return dropped


def _write_records(records: list[bytes], f: BinaryIO) -> None:
    writer = RecordWriter(f)
    for raw in records:
        writer.write(raw)
