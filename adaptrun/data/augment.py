"""Batched, seeded augmentation on the training device.

Every op takes float images in [0, 1] shaped (B, C, H, W) and a torch.Generator on
the same device, draws one random choice per image, and returns a batch of the same
shape and range. Recipes are lists of ``{op: NAME, ...params}`` mappings.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from adaptrun.core.errors import is_count, is_number, require
from adaptrun.core.schemas import check_section

Generator = torch.Generator


def random_crop(x: torch.Tensor, gen: Generator, padding: int = 4) -> torch.Tensor:
    """Zero-pad by ``padding`` and cut a random window of the original size."""
    if padding == 0:
        return x
    b, _, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    dy = torch.randint(0, 2 * padding + 1, (b,), generator=gen, device=x.device)
    dx = torch.randint(0, 2 * padding + 1, (b,), generator=gen, device=x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, :, None]  # (B, H, 1)
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, :]  # (B, 1, W)
    batch = torch.arange(b, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2).contiguous()


def random_flip(x: torch.Tensor, gen: Generator, p: float = 0.5) -> torch.Tensor:
    """Mirror each image left-right with probability ``p``."""
    flip = torch.rand(x.shape[0], generator=gen, device=x.device) < p
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def random_affine(
    x: torch.Tensor,
    gen: Generator,
    degrees: float = 0.0,
    scale: Sequence[float] = (1.0, 1.0),
    translate: float = 0.0,
) -> torch.Tensor:
    """Rotate by U(-degrees, degrees), zoom by U(scale), shift by U(-translate, translate)
    of the image size; bilinear, zeros outside. Meant for square images."""
    b = x.shape[0]

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(b, generator=gen, device=x.device)

    angle = uniform(-degrees, degrees) * (math.pi / 180)
    zoom = uniform(float(scale[0]), float(scale[1]))
    shift = torch.stack([uniform(-translate, translate), uniform(-translate, translate)], 1)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    # The grid maps output to input coordinates: the inverse of the wanted transform.
    theta = torch.stack([torch.stack([cos, sin], 1), torch.stack([-sin, cos], 1)], 1)
    theta = torch.cat([theta, -2 * shift[:, :, None]], 2).to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def cutout(x: torch.Tensor, gen: Generator, size: int = 8) -> torch.Tensor:
    """Zero a ``size`` x ``size`` square (clipped at the border) at a random centre."""
    b, _, h, w = x.shape
    cy = torch.randint(0, h, (b,), generator=gen, device=x.device)[:, None, None]
    cx = torch.randint(0, w, (b,), generator=gen, device=x.device)[:, None, None]
    ys = torch.arange(h, device=x.device)[None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, :]
    top, left = cy - size // 2, cx - size // 2
    hole = (ys >= top) & (ys < top + size) & (xs >= left) & (xs < left + size)
    return x * (~hole)[:, None].to(x.dtype)


OPS: dict[str, Callable[..., torch.Tensor]] = {
    "crop": random_crop,
    "flip": random_flip,
    "affine": random_affine,
    "cutout": cutout,
}
PARAMS = {
    "crop": {"padding"},
    "flip": {"p"},
    "affine": {"degrees", "scale", "translate"},
    "cutout": {"size"},
}


@dataclasses.dataclass
class AugmentationConfig:
    name: str = ""
    ops: list[Any] = dataclasses.field(default_factory=list)
    benchmark_epochs: Any = 50  # experiment=jagtap_benchmark's epochs with this option


def check_augmentation(cfg: Mapping[str, Any]) -> None:
    """The option's keys and types, then its recipe."""
    check_section("augmentation", cfg, AugmentationConfig, f"augmentation {cfg.get('name')}")
    check_ops(cfg["ops"])


def check_ops(ops: Sequence[Mapping[str, Any]]) -> None:
    """Config-only checks of a recipe, naming ``augmentation.ops[i]``."""
    for i, spec in enumerate(ops):
        key = f"augmentation.ops[{i}]"
        require(
            isinstance(spec, Mapping),
            key,
            f"must be a mapping such as {{op: crop, padding: 4}} (got {spec!r})",
        )
        name = str(spec.get("op", ""))
        require(name in OPS, key, f"unknown op {name!r}; valid: {', '.join(OPS)}")
        extra = set(spec) - {"op"} - PARAMS[name]
        require(
            not extra,
            key,
            f"unknown parameter(s) {sorted(extra)} for {name}; "
            f"valid: {', '.join(sorted(PARAMS[name]))}",
        )
        params = {k: v for k, v in spec.items() if k != "op"}
        if "padding" in params:
            require(
                is_count(params["padding"], 0),
                key,
                "crop padding must be an integer >= 0",
            )
        if "p" in params:
            require(is_number(params["p"]) and 0 <= params["p"] <= 1, key, "p must be in [0, 1]")
        if "size" in params:
            require(
                is_count(params["size"]),
                key,
                "cutout size must be an integer >= 1",
            )
        if "scale" in params:
            s = list(params["scale"])
            require(
                len(s) == 2 and all(is_number(v) and v > 0 for v in s) and s[0] <= s[1],
                key,
                "affine scale must be [low, high] with 0 < low <= high",
            )
        for name_ in ("degrees", "translate"):
            if name_ in params:
                require(
                    is_number(params[name_]) and params[name_] >= 0,
                    key,
                    f"affine {name_} must be >= 0",
                )


class Augment:
    """A recipe of ops applied in order to each training batch."""

    def __init__(self, ops: Sequence[Mapping[str, Any]]) -> None:
        check_ops(ops)
        self.steps = [(OPS[s["op"]], {k: v for k, v in s.items() if k != "op"}) for s in ops]

    def __bool__(self) -> bool:
        return bool(self.steps)

    def __call__(self, x: torch.Tensor, gen: Generator) -> torch.Tensor:
        for op, params in self.steps:
            x = op(x, gen, **params)
        return x
