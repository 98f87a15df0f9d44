"""User-facing errors: the CLI turns these into one line on stderr and exit code 2."""

import difflib
import errno
import math
from collections.abc import Sequence


class UserError(Exception):
    """Something the user can fix (a config value, a missing file); no traceback needed."""


class ConfigError(UserError, ValueError):
    """A config value that cannot work, named by its full key (e.g. ``trainer.batch_size``)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


class DatasetError(UserError):
    """Dataset files missing, corrupt or unreadable; the message says where and what to do."""


def disk_full(exc: BaseException) -> bool:
    """A write that found no space left: the machine's failure, not one run's."""
    return isinstance(exc, OSError) and exc.errno == errno.ENOSPC


def describe_error(exc: BaseException) -> str:
    """One line for an exception: a UserError's own words, else its type and message."""
    return str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"


def is_number(value: object) -> bool:
    """A finite int or float from a config: YAML's true/false are bools, not numbers, and
    no setting means anything at nan or infinity (``optimizer.lr=inf`` is refused)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_count(value: object, minimum: int = 1) -> bool:
    """An integer (not a bool) of at least ``minimum``."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def require(ok: bool, key: str, message: str) -> None:
    """Raise ConfigError(key, message) unless ok."""
    if not ok:
        raise ConfigError(key, message)


def config_problem(exc: BaseException) -> str:
    """What a config check found, for one line: a ConfigError's (or an interpolation
    error's) own words; anything else the check raised is a value it could not read, named
    by its type so that the message still says what went wrong."""
    if isinstance(exc, UserError):
        return str(exc)
    text = str(exc).strip()
    if type(exc).__module__.startswith("omegaconf"):
        return text
    return f"a config value could not be checked ({type(exc).__name__}: {text})"


def nearest(name: str, valid: Sequence[str], prefix: str = "", n: int = 2) -> str:
    """``did you mean X? `` for the ``n`` closest of ``valid`` (difflib), or ""."""
    near = difflib.get_close_matches(name, list(valid), n=n, cutoff=0.6)
    return f"did you mean {' or '.join(prefix + m for m in near)}? " if near else ""
