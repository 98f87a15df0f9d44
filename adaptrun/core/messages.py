"""One-line messages: Hydra's compose and override errors shortened, with a "did you
mean" from the options or keys it offered; any text folded onto one line."""

from __future__ import annotations

from collections.abc import Mapping

from hydra.errors import MissingConfigException, OverrideParseException

from adaptrun.core.errors import nearest


def one_line(text: object) -> str:
    """``text`` on one line: its lines joined with "; ", runs of spaces kept single."""
    lines = [" ".join(line.split()) for line in str(text).splitlines()]
    return "; ".join(line for line in lines if line)


def hydra_error(exc: BaseException) -> str:
    """What went wrong in Hydra's composition or override parsing, on one line."""
    cause = exc.__cause__
    if isinstance(exc, UserWarning):  # the search path's warning, made an error by the CLI
        return (
            f"hydra.searchpath: {one_line(exc).rstrip('.')}; give a folder that holds your "
            "config options, e.g. hydra.searchpath=[file://$PWD/my_conf]"
        )
    if isinstance(exc, MissingConfigException) and exc.missing_cfg_file and exc.options:
        group, _, name = exc.missing_cfg_file.rpartition("/")
        context = one_line(str(exc).split("Could not find")[0]).strip(" :")
        where = f"{context}: " if context and context != "In 'config'" else ""
        return (
            f"{where}{group}={name}: no such option; {nearest(name, exc.options, group + '=')}"
            f"valid: {', '.join(exc.options)}"
        )
    if isinstance(exc, OverrideParseException):
        first = one_line(str(exc).split("\nSee ")[0])
        return f"cannot read the overrides ({first}); see: adaptrun --hydra-help"
    full_key = getattr(cause, "full_key", None)
    parent = getattr(cause, "parent_node", None)
    unknown = "is not in struct" in str(cause) or " not in '" in str(cause)
    if full_key and unknown and isinstance(parent, Mapping):
        section, _, key = str(full_key).rpartition(".")
        valid = [str(k) for k in parent]
        prefix = f"{section}." if section else ""
        return f"{full_key}: no such key; {nearest(key, valid, prefix)}valid: {', '.join(valid)}"
    message = getattr(cause, "msg", None)
    if full_key and message:
        return f"{full_key}: {one_line(str(message).splitlines()[0])}"
    text = one_line(exc)
    return f"{text} ({one_line(cause)})" if cause is not None else text
