"""Point sets for regression and physics-informed tasks.

Random sets (``uniform``, ``lhs``) and quasi-random, low-discrepancy ones (``halton``,
``sobol``, ``hammersley``), each drawn from a seed: the same seed gives the same points,
another seed another set of the same kind. The quasi-random sets are randomised so that
seeds redraw them while they stay low-discrepancy: Halton and Sobol by scipy's
scrambling (``scipy.stats.qmc``), Hammersley, which scipy does not have, by a random
shift modulo 1 (a Cranley-Patterson rotation).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

SAMPLINGS = ("lhs", "uniform", "hammersley", "halton", "sobol")


def sample_box(
    n: int, low: list[float], high: list[float], method: str, generator: torch.Generator
) -> torch.Tensor:
    """n points in the box [low, high] (one column per dimension), float64.

    ``lhs``: Latin hypercube, one point in each of n equal strata per dimension;
    ``uniform``: independent uniform draws; ``halton``, ``sobol``: scrambled
    quasi-random sequences; ``hammersley``: the Hammersley set (i/n, then the radical
    inverses of i in bases 2, 3, ...), randomly shifted.
    """
    dims = len(low)
    if method == "lhs":
        strata = torch.stack([torch.randperm(n, generator=generator) for _ in range(dims)], 1)
        unit = (strata + torch.rand(n, dims, generator=generator, dtype=torch.float64)) / n
    elif method == "uniform":
        unit = torch.rand(n, dims, generator=generator, dtype=torch.float64)
    elif method in SAMPLINGS:
        seed = int(torch.randint(2**62, (1,), generator=generator))
        unit = torch.from_numpy(quasi_random(n, dims, method, seed))
    else:
        raise ValueError(f"unknown sampling {method!r}; valid: {', '.join(SAMPLINGS)}")
    lo, hi = torch.tensor(low, dtype=torch.float64), torch.tensor(high, dtype=torch.float64)
    return lo + unit * (hi - lo)


def quasi_random(n: int, dims: int, method: str, seed: int) -> np.ndarray:
    """n points of a randomised low-discrepancy set in the unit cube [0, 1)^dims."""
    from scipy.stats import qmc  # on first use: scipy.stats costs a run 0.7 s to import

    rng = np.random.default_rng(seed)
    if method == "hammersley":
        return (hammersley(n, dims) + rng.random(dims)) % 1.0
    if method == "halton":
        engine: qmc.QMCEngine = qmc.Halton(dims, scramble=True, seed=rng)
    elif method == "sobol":
        engine = qmc.Sobol(dims, scramble=True, seed=rng)
    else:
        raise ValueError(f"unknown quasi-random set {method!r}")
    with warnings.catch_warnings():  # Sobol's balance needs n a power of 2; any n is fine here
        warnings.filterwarnings("ignore", message=".*balance properties.*")
        return engine.random(n)


def hammersley(n: int, dims: int) -> np.ndarray:
    """The Hammersley set: point i is (i / n, phi_2(i), phi_3(i), ...), phi_b the radical
    inverse in base b (the digits of i in base b mirrored behind the point). Hand-written:
    scipy.stats.qmc has Halton (the radical inverses alone) but not this set."""
    points = np.empty((n, dims))
    points[:, 0] = np.arange(n) / n
    for d, base in zip(range(1, dims), _primes(dims - 1), strict=True):
        index = np.arange(n)
        value, scale = np.zeros(n), 1.0 / base
        while index.any():
            index, digit = np.divmod(index, base)
            value += digit * scale
            scale /= base
        points[:, d] = value
    return points


def _primes(count: int) -> list[int]:
    found: list[int] = []
    candidate = 2
    while len(found) < count:
        if all(candidate % p for p in found):
            found.append(candidate)
        candidate += 1
    return found
