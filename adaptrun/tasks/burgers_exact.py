"""The exact viscous Burgers solution through the Cole-Hopf transformation.

    u(x, t) = -int sin(pi (x-y)) f(x-y) exp(-y^2 / (4 nu t)) dy / int f(x-y) exp(-y^2 / (4 nu t)) dy
    f(s) = exp(-cos(pi s) / (2 pi nu))

With y = sqrt(4 nu t) z both integrals are Gauss-Hermite quadratures in z. f is
exp(+-1/(2 pi nu)), which overflows for small nu, so the weights are combined in
log space with the largest exponent subtracted before exponentiating.
"""

from __future__ import annotations

import functools
import math

import numpy as np


@functools.lru_cache(maxsize=8)
def _hermite(n: int) -> tuple[np.ndarray, np.ndarray]:
    from scipy.special import roots_hermite  # on first use: scipy costs a run 0.15 s

    nodes, weights = roots_hermite(n)  # numpy's hermgauss overflows past ~360 nodes
    with np.errstate(divide="ignore"):
        return nodes, np.log(weights)


def exact_u(
    x: np.ndarray, t: np.ndarray, nu: float = 0.01 / math.pi, points: int = 400
) -> np.ndarray:
    """u at matching arrays of x in [-1, 1] and t >= 0 (u(x, 0) = -sin(pi x) exactly)."""
    x, t = np.broadcast_arrays(np.asarray(x, np.float64), np.asarray(t, np.float64))
    out = -np.sin(np.pi * x)
    live = t > 0
    if not live.any():
        return out
    nodes, log_w = _hermite(points)
    xs, ts = x[live][:, None], t[live][:, None]
    s = xs - np.sqrt(4 * nu * ts) * nodes[None, :]  # (M, points)
    log_terms = log_w[None, :] - np.cos(np.pi * s) / (2 * np.pi * nu)
    weights = np.exp(log_terms - log_terms.max(axis=1, keepdims=True))
    out[live] = -(weights * np.sin(np.pi * s)).sum(axis=1) / weights.sum(axis=1)
    return out


@functools.lru_cache(maxsize=4)
def exact_grid(
    nx: int, nt: int, nu: float, points: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, t, u) on an nx x nt grid over [-1, 1] x [0, 1]; u has shape (nt, nx). Cached."""
    x = np.linspace(-1.0, 1.0, nx)
    t = np.linspace(0.0, 1.0, nt)
    tt, xx = np.meshgrid(t, x, indexing="ij")
    u = exact_u(xx.ravel(), tt.ravel(), nu, points).reshape(nt, nx)
    for array in (x, t, u):
        array.setflags(write=False)
    return x, t, u
