"""OmegaConf resolvers the config tree uses; registered before Hydra composes anything."""

from __future__ import annotations

import hashlib

from omegaconf import OmegaConf

MAX_NAME = 200  # bytes in one path component; file systems allow 255 bytes, not characters


def folder_name(overrides: str, fallback: str = "default") -> str:
    """A single path component for ``key=value,...``: no slashes, at most MAX_NAME bytes
    (a CJK character takes three), cut at a character boundary."""
    name = overrides.replace("/", "_").replace("\\", "_") or fallback
    encoded = name.encode()
    if len(encoded) > MAX_NAME:
        digest = hashlib.sha1(encoded).hexdigest()[:8]
        head = encoded[: MAX_NAME - 9].decode(errors="ignore")
        name = f"{head}~{digest}"
    return name


def register_resolvers() -> None:
    OmegaConf.register_new_resolver("adaptrun_folder", folder_name, replace=True)
