"""The Triton kernels behind adaptrun.activations.fused (imported only when used: Triton
looks kernels' helpers up among module globals, and not every install has Triton).

Every kernel sees x as a (R, C) row-major matrix in tiles of BR x BC; ``U`` units, the
unit of an element being ``row % U`` (ROW_UNITS) or ``col % U``. Arithmetic is fp32
whatever the storage type; parameter gradients are reduced over the tile in registers
and added with one atomic per unit (and hinge) and tile.
"""

import triton
import triton.language as tl

cdiv = triton.cdiv


@triton.jit
def base_fwd(z, w, neg, BASE: tl.constexpr):
    if BASE == 0:
        y = tl.where(z > 0, z, 0.0)
    elif BASE == 1:
        y = tl.where(z > 0, z, neg * z)
    elif BASE == 2:
        y = 2.0 / (1.0 + tl.exp(-2.0 * z)) - 1.0
    elif BASE == 3:
        y = 1.0 / (1.0 + tl.exp(-z))
    elif BASE == 4:
        y = tl.sin(z)
    elif BASE == 5:
        y = 0.5 * z * (1.0 + tl.erf(z * 0.7071067811865476))
    elif BASE == 6:
        y = z / (1.0 + tl.exp(-z))
    else:
        y = tl.where(z > 0, z, w * z)
    return y


@triton.jit
def base_grad(z, w, neg, BASE: tl.constexpr):
    if BASE == 0:
        d = tl.where(z > 0, 1.0, 0.0)
    elif BASE == 1:
        d = tl.where(z > 0, 1.0, neg)
    elif BASE == 2:
        t = 2.0 / (1.0 + tl.exp(-2.0 * z)) - 1.0
        d = 1.0 - t * t
    elif BASE == 3:
        s = 1.0 / (1.0 + tl.exp(-z))
        d = s * (1.0 - s)
    elif BASE == 4:
        d = tl.cos(z)
    elif BASE == 5:
        cdf = 0.5 * (1.0 + tl.erf(z * 0.7071067811865476))
        d = cdf + z * 0.3989422804014327 * tl.exp(-0.5 * z * z)
    elif BASE == 6:
        s = 1.0 / (1.0 + tl.exp(-z))
        d = s * (1.0 + z * (1.0 - s))
    else:
        d = tl.where(z > 0, 1.0, w)
    return d


@triton.jit
def tile(R, C, BR: tl.constexpr, BC: tl.constexpr):
    """This program's BR x BC tile: its rows, columns, in-bounds mask and offsets."""
    rows = tl.program_id(0) * BR + tl.arange(0, BR)
    cols = tl.program_id(1) * BC + tl.arange(0, BC)
    mask = (rows[:, None] < R) & (cols[None, :] < C)
    return rows, cols, mask, rows[:, None] * C + cols[None, :]


@triton.jit
def load_f32(P, offs, mask):
    return tl.load(P + offs, mask=mask, other=0.0).to(tl.float32)


@triton.jit
def load_unit(P, index, m, ROW_UNITS: tl.constexpr):
    """Per-unit values (one per row or column of the tile), shaped to broadcast over it."""
    return per_unit(tl.load(P + index, mask=m, other=0.0).to(tl.float32), ROW_UNITS)


@triton.jit
def units_of(rows, cols, R, C, U, ROW_UNITS: tl.constexpr):
    if ROW_UNITS:
        u = rows % U
        m = rows < R
    else:
        u = cols % U
        m = cols < C
    return u, m


@triton.jit
def per_unit(values, ROW_UNITS: tl.constexpr):
    if ROW_UNITS:  # noqa: SIM108  (a constexpr branch: Triton compiles only one side)
        v = values[:, None]
    else:
        v = values[None, :]
    return v


@triton.jit
def reduce_to_units(contrib, ptr, u, m, ROW_UNITS: tl.constexpr):
    if ROW_UNITS:
        tl.atomic_add(ptr + u, tl.sum(contrib, axis=1), mask=m)
    else:
        tl.atomic_add(ptr + u, tl.sum(contrib, axis=0), mask=m)


@triton.jit
def slope_fwd(X, A, W, Y, R, C, U, scale, neg, ROW_UNITS: tl.constexpr,
              BASE: tl.constexpr, BR: tl.constexpr, BC: tl.constexpr):  # fmt: skip
    rows, cols, mask, offs = tile(R, C, BR, BC)
    x = load_f32(X, offs, mask)
    u, m = units_of(rows, cols, R, C, U, ROW_UNITS)
    a = load_unit(A, u, m, ROW_UNITS)
    w = tl.load(W).to(tl.float32)
    y = base_fwd(scale * a * x, w, neg, BASE)
    tl.store(Y + offs, y.to(Y.dtype.element_ty), mask=mask)


@triton.jit
def slope_bwd(X, A, W, GY, GX, GA, GW, R, C, U, scale, neg, ROW_UNITS: tl.constexpr,
              BASE: tl.constexpr, BR: tl.constexpr, BC: tl.constexpr):  # fmt: skip
    rows, cols, mask, offs = tile(R, C, BR, BC)
    x = load_f32(X, offs, mask)
    gy = load_f32(GY, offs, mask)
    u, m = units_of(rows, cols, R, C, U, ROW_UNITS)
    a = load_unit(A, u, m, ROW_UNITS)
    w = tl.load(W).to(tl.float32)
    z = scale * a * x
    dz = gy * base_grad(z, w, neg, BASE)
    tl.store(GX + offs, (dz * scale * a).to(GX.dtype.element_ty), mask=mask)
    reduce_to_units(tl.where(mask, dz * scale * x, 0.0), GA, u, m, ROW_UNITS)
    if BASE == 7:  # PReLU's own weight: d/dw (w z) = z on the negative side
        gw = tl.where(mask & (z <= 0), gy * z, 0.0)
        tl.atomic_add(GW, tl.sum(tl.sum(gw, axis=1), axis=0))


@triton.jit
def adact_segment(V, x, u, mask, low, step, H: tl.constexpr, ROW_UNITS: tl.constexpr):
    """The segment x falls in (the end ones extend outwards), where in it (0..1), and
    the learned values at its two hinges."""
    base = per_unit(u * H, ROW_UNITS)
    seg = tl.minimum(tl.maximum(tl.floor((x - low) / step), 0.0), H - 2.0).to(tl.int32)
    t = (x - (low + seg.to(tl.float32) * step)) / step
    a0 = tl.load(V + base + seg, mask=mask, other=0.0).to(tl.float32)
    a1 = tl.load(V + base + seg + 1, mask=mask, other=0.0).to(tl.float32)
    return seg, t, a0, a1


@triton.jit
def adact_fwd(X, V, Y, R, C, U, low, step, H: tl.constexpr, ROW_UNITS: tl.constexpr,
              BR: tl.constexpr, BC: tl.constexpr):  # fmt: skip
    rows, cols, mask, offs = tile(R, C, BR, BC)
    x = load_f32(X, offs, mask)
    u, _in_range = units_of(rows, cols, R, C, U, ROW_UNITS)
    _seg, t, a0, a1 = adact_segment(V, x, u, mask, low, step, H, ROW_UNITS)
    tl.store(Y + offs, (a0 + (a1 - a0) * t).to(Y.dtype.element_ty), mask=mask)


@triton.jit
def adact_bwd(X, V, GY, GX, GV, R, C, U, low, step, H: tl.constexpr,
              ROW_UNITS: tl.constexpr, BR: tl.constexpr, BC: tl.constexpr):  # fmt: skip
    rows, cols, mask, offs = tile(R, C, BR, BC)
    x = load_f32(X, offs, mask)
    gy = load_f32(GY, offs, mask)
    u, m = units_of(rows, cols, R, C, U, ROW_UNITS)
    seg, t, a0, a1 = adact_segment(V, x, u, mask, low, step, H, ROW_UNITS)
    tl.store(GX + offs, (gy * (a1 - a0) / step).to(GX.dtype.element_ty), mask=mask)
    for h in tl.static_range(H):  # each hinge value's gradient, reduced in registers
        left = tl.where(mask & (seg == h), gy * (1.0 - t), 0.0)
        right = tl.where(mask & (seg + 1 == h), gy * t, 0.0)
        reduce_to_units(left + right, GV + h, u * H, m, ROW_UNITS)


@triton.jit
def apl_fwd(X, A, B, Y, R, C, U, S: tl.constexpr, ROW_UNITS: tl.constexpr,
            BR: tl.constexpr, BC: tl.constexpr):  # fmt: skip
    rows, cols, mask, offs = tile(R, C, BR, BC)
    x = load_f32(X, offs, mask)
    u, m = units_of(rows, cols, R, C, U, ROW_UNITS)
    y = tl.where(x > 0, x, 0.0)
    for s in tl.static_range(S):
        a = load_unit(A, u * S + s, m, ROW_UNITS)
        b = load_unit(B, u * S + s, m, ROW_UNITS)
        y += a * tl.maximum(b - x, 0.0)
    tl.store(Y + offs, y.to(Y.dtype.element_ty), mask=mask)


@triton.jit
def apl_bwd(X, A, B, GY, GX, GA, GB, R, C, U, S: tl.constexpr, ROW_UNITS: tl.constexpr,
            BR: tl.constexpr, BC: tl.constexpr):  # fmt: skip
    rows, cols, mask, offs = tile(R, C, BR, BC)
    x = load_f32(X, offs, mask)
    gy = load_f32(GY, offs, mask)
    u, m = units_of(rows, cols, R, C, U, ROW_UNITS)
    gx = tl.where(x > 0, gy, 0.0)
    for s in tl.static_range(S):
        a = load_unit(A, u * S + s, m, ROW_UNITS)
        b = load_unit(B, u * S + s, m, ROW_UNITS)
        active = mask & (b - x > 0)
        gx -= tl.where(active, gy * a, 0.0)
        reduce_to_units(tl.where(active, gy * (b - x), 0.0), GA + s, u * S, m, ROW_UNITS)
        reduce_to_units(tl.where(active, gy * a, 0.0), GB + s, u * S, m, ROW_UNITS)
    tl.store(GX + offs, gx.to(GX.dtype.element_ty), mask=mask)
