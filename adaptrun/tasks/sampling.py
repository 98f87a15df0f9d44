"""Point sets for regression and physics-informed tasks."""

from __future__ import annotations

import torch

SAMPLINGS = ("lhs", "uniform")


def sample_box(
    n: int, low: list[float], high: list[float], method: str, generator: torch.Generator
) -> torch.Tensor:
    """n points in the box [low, high] (one column per dimension), float64.

    ``lhs``: Latin hypercube, one point in each of n equal strata per dimension;
    ``uniform``: independent uniform draws.
    """
    dims = len(low)
    if method == "lhs":
        strata = torch.stack([torch.randperm(n, generator=generator) for _ in range(dims)], 1)
        unit = (strata + torch.rand(n, dims, generator=generator, dtype=torch.float64)) / n
    elif method == "uniform":
        unit = torch.rand(n, dims, generator=generator, dtype=torch.float64)
    else:
        raise ValueError(f"unknown sampling {method!r}; valid: {', '.join(SAMPLINGS)}")
    lo, hi = torch.tensor(low, dtype=torch.float64), torch.tensor(high, dtype=torch.float64)
    return lo + unit * (hi - lo)
