"""OmegaConf resolvers the config tree uses; registered before Hydra composes anything."""

from __future__ import annotations

import hashlib

from omegaconf import OmegaConf

MAX_NAME = 200  # one path component; filesystems allow 255


def folder_name(overrides: str, fallback: str = "default") -> str:
    """A single path component for ``key=value,...``: no slashes, bounded length."""
    name = overrides.replace("/", "_").replace("\\", "_") or fallback
    if len(name) > MAX_NAME:
        digest = hashlib.sha1(name.encode()).hexdigest()[:8]
        name = f"{name[: MAX_NAME - 9]}~{digest}"
    return name


def register_resolvers() -> None:
    OmegaConf.register_new_resolver("adaptrun_folder", folder_name, replace=True)
