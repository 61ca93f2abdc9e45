"""Compiled CPU compositing for inference: gsplat's per-pixel loop, tile-parallel, with numba.

Same image formation as :mod:`gs_render.raster_torch` (3D Gaussian splatting, Kerbl et al.
2023, with gsplat 1.5.3's constants): per pixel centre p and the Gaussians of its tile in
depth order,

    log a_i = log o_i - sigma_i(p),  sigma_i(p) = 0.5 (a dx^2 + c dy^2) + b dx dy,  d = p - mu_i
    skip when log a_i < log(1/255);  a_i = min(0.999, exp(log a_i))
    stop before the first i with T (1 - a_i) <= 1e-4;  C += c_i a_i T;  T *= 1 - a_i
    colour = C + T b,  alpha = 1 - T.

The torch compositor evaluates whole depth chunks with matrix products because Python-level
loops are slow; a compiled loop needs none of that: each pixel walks its tile's list and stops
as soon as it is opaque, as gsplat's CUDA kernel does, so the work is the Gaussians a pixel
actually sees. Tiles (16 px) run in parallel over numba's threads (``numba.set_num_threads``,
set from torch's thread count by the caller), in a fixed interleaved order so that the busy
tiles of the road and the empty ones of the sky spread over the threads.

Forward only (no autograd): ``rasterize`` uses it when no input requires a gradient; the
photometric fit keeps the differentiable torch compositor. The kernels compile on first use
(a few seconds) and are cached on disk.
"""

from __future__ import annotations

import math

import numpy as np

try:
    import numba
    from numba import njit, prange

    # numba's own pool first: OpenMP workers spin after each parallel region and, on two
    # cores, starve torch's thread for tens of milliseconds per call (measured: a 160x120
    # SSIM took 0.6 s instead of 5 ms). TBB last: Debian 12's is too old for numba and trying
    # it prints a warning. The workqueue pool serves one calling thread at a time, which is
    # how nodes and the bench call it.
    numba.config.THREADING_LAYER_PRIORITY = ["workqueue", "omp", "tbb"]
except ImportError:  # pragma: no cover - numba is pinned in requirements.txt
    numba = None

from gs_render.raster_torch import ALPHA_MAX, TRANSMITTANCE_MIN

#: Tile edge (px) of the compiled path: per-tile lists are walked per pixel, so larger tiles
#: only add pixels that test a Gaussian they do not touch; 16 is gsplat's tile size.
TILE_PX = 8
_LOG_ALPHA_MAX = math.log(ALPHA_MAX)
_LOG_ALPHA_THRESHOLD = math.log(1.0 / 255.0)
_LOG2_E = 1.4426950408889634
#: 2^-k, k = 0..63: the integer part of a fast exp's exponent (arguments here are in [-6, 0]).
_POW2_NEG = 2.0 ** -np.arange(64, dtype=np.float64)
#: 2^f on [0, 1), degree-6 Chebyshev fit: relative error 2.6e-9, far below float32's 6e-8.
_EXP2_POLY = (1.0000000025868898, 0.6931469286930125, 0.24023050204510588,
              0.05548042632550494, 0.00968458045263513, 0.0012387821477444657,
              0.0002187750477273889)  # fmt: skip


def numba_available() -> bool:
    """True when numba imports (the compiled CPU path can run)."""
    return numba is not None


if numba is not None:

    @njit(cache=True, inline="always")
    def _exp_nonpositive(x: float) -> float:
        """exp(x) for x in (-44, 0]: 2^(x log2 e) split into 2^-k (table) and a polynomial
        2^f, f in [0, 1). The libm call it replaces took most of a float32 render's time."""
        y = x * _LOG2_E
        k = math.floor(y)
        f = y - k
        c = _EXP2_POLY
        p = c[0] + f * (c[1] + f * (c[2] + f * (c[3] + f * (c[4] + f * (c[5] + f * c[6])))))
        return p * _POW2_NEG[-int(k)]

    @njit(cache=True)
    def _bin(
        means2d: np.ndarray,  # [M, 2] px
        radii: np.ndarray,  # [M, 2] px
        tile: int,
        tiles_x: int,
        tiles_y: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Depth-ordered Gaussian ids per tile: (flat ids [I], starts [tiles + 1])."""
        m = means2d.shape[0]
        n_tiles = tiles_x * tiles_y
        box = np.empty((m, 4), dtype=np.int64)
        counts = np.zeros(n_tiles + 1, dtype=np.int64)
        for i in range(m):
            cx, cy = means2d[i, 0] / tile, means2d[i, 1] / tile
            hx, hy = radii[i, 0] / tile, radii[i, 1] / tile
            x0 = min(max(math.floor(cx - hx), 0), tiles_x)
            y0 = min(max(math.floor(cy - hy), 0), tiles_y)
            x1 = min(max(math.ceil(cx + hx), 0), tiles_x)
            y1 = min(max(math.ceil(cy + hy), 0), tiles_y)
            box[i, 0], box[i, 1], box[i, 2], box[i, 3] = x0, y0, x1, y1
            for ty in range(y0, y1):
                for tx in range(x0, x1):
                    counts[ty * tiles_x + tx + 1] += 1
        starts = np.cumsum(counts)
        fill = starts[:-1].copy()
        ids = np.empty(starts[-1], dtype=np.int64)
        for i in range(m):  # in depth order, so every tile's list stays depth-ordered
            for ty in range(box[i, 1], box[i, 3]):
                for tx in range(box[i, 0], box[i, 2]):
                    t = ty * tiles_x + tx
                    ids[fill[t]] = i
                    fill[t] += 1
        return ids, starts

    @njit(cache=True)
    def _pack(
        means2d: np.ndarray,  # [M, 2]
        conics: np.ndarray,  # [M, 3]
        opacities: np.ndarray,  # [M]
        colors: np.ndarray,  # [M, 3]
    ) -> np.ndarray:
        """[M, 9] rows (mx, my, a/2, b, c/2, log o, limit, ...) with limit = log o - log(1/255)
        (sigma above it is skipped) and the colour last: one cache line per Gaussian."""
        m = means2d.shape[0]
        packed = np.empty((m, 9), dtype=means2d.dtype)
        for i in range(m):
            log_o = math.log(opacities[i])
            packed[i, 0], packed[i, 1] = means2d[i, 0], means2d[i, 1]
            packed[i, 2], packed[i, 3], packed[i, 4] = (
                0.5 * conics[i, 0],
                conics[i, 1],
                0.5 * conics[i, 2],
            )
            packed[i, 5], packed[i, 6] = log_o, log_o - _LOG_ALPHA_THRESHOLD
            packed[i, 7], packed[i, 8] = colors[i, 0], colors[i, 1]
        return packed

    @njit(cache=True, parallel=True, fastmath=True)
    def _composite(
        packed: np.ndarray,  # [M, 9] from _pack (colour channel 2 in blue)
        blue: np.ndarray,  # [M]
        ids: np.ndarray,  # [I]
        starts: np.ndarray,  # [tiles + 1]
        order: np.ndarray,  # [tiles] the order tiles are handed to threads
        tile: int,
        tiles_x: int,
        width: int,
        height: int,
        background: np.ndarray,  # [3]
        out: np.ndarray,  # [H, W, 4] RGB and alpha
        fast_exp: bool,
    ) -> None:
        for k in prange(order.shape[0]):
            t = order[k]
            first, last = starts[t], starts[t + 1]
            n = last - first
            local = np.empty((n, 10), dtype=packed.dtype)  # the tile's list, contiguous
            for j in range(n):
                i = ids[first + j]
                for f in range(9):
                    local[j, f] = packed[i, f]
                local[j, 9] = blue[i]
            row0, col0 = (t // tiles_x) * tile, (t % tiles_x) * tile
            for row in range(row0, min(row0 + tile, height)):
                py = row + 0.5
                for col in range(col0, min(col0 + tile, width)):
                    px = col + 0.5
                    trans = 1.0
                    r = g = b = 0.0
                    for j in range(n):
                        dx = px - local[j, 0]
                        dy = py - local[j, 1]
                        sigma = (
                            local[j, 2] * dx * dx + local[j, 4] * dy * dy + local[j, 3] * dx * dy
                        )
                        if sigma > local[j, 6]:
                            continue
                        log_a = min(local[j, 5] - sigma, _LOG_ALPHA_MAX)
                        alpha = _exp_nonpositive(log_a) if fast_exp else math.exp(log_a)
                        after = trans * (1.0 - alpha)
                        if after <= TRANSMITTANCE_MIN:
                            break
                        w = alpha * trans
                        r += local[j, 7] * w
                        g += local[j, 8] * w
                        b += local[j, 9] * w
                        trans = after
                    out[row, col, 0] = r + trans * background[0]
                    out[row, col, 1] = g + trans * background[1]
                    out[row, col, 2] = b + trans * background[2]
                    out[row, col, 3] = 1.0 - trans


def _tile_order(n_tiles: int) -> np.ndarray:
    """A fixed permutation of the tiles [n] that interleaves rows and columns (stride coprime
    with n), so that contiguous chunks of it sample the whole image."""
    stride = max(1, int(n_tiles * 0.618))
    while math.gcd(stride, n_tiles) != 1:
        stride += 1
    return (np.arange(n_tiles, dtype=np.int64) * stride) % max(n_tiles, 1)


def composite_numba(
    means2d: np.ndarray,  # [M, 2] px, depth-sorted
    conics: np.ndarray,  # [M, 3] (a, b, c)
    opacities: np.ndarray,  # [M] in [1/255, 1]
    radii: np.ndarray,  # [M, 2] int box half-extents (px)
    colors: np.ndarray,  # [M, 3]
    width: int,
    height: int,
    background: np.ndarray | None,  # [3] or None (black)
    threads: int | None = None,
) -> np.ndarray:
    """Composites projected Gaussians; returns [H, W, 4] (RGB over the background, alpha) in
    the dtype of ``means2d`` (float32 or float64). ``threads``: numba threads for the tiles
    (None: numba's current setting; capped at numba's pool size).

    Raises:
        RuntimeError: numba is not installed.
    """
    if numba is None:
        raise RuntimeError("the compiled CPU compositor needs numba (see requirements.txt)")
    dtype = means2d.dtype
    tiles_x, tiles_y = -(-width // TILE_PX), -(-height // TILE_PX)
    out = np.zeros((height, width, 4), dtype=dtype)
    bg = np.zeros(3, dtype=dtype) if background is None else np.asarray(background, dtype)
    if means2d.shape[0] == 0:
        out[..., :3] = bg
        return out
    if threads is not None:
        numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))
    ids, starts = _bin(means2d, radii.astype(dtype), TILE_PX, tiles_x, tiles_y)
    packed = _pack(means2d, conics, opacities, colors)
    blue = np.ascontiguousarray(colors[:, 2])
    order = _tile_order(tiles_x * tiles_y)
    fast = dtype == np.float32  # float64 callers (tests) get libm's exp, bit for bit
    _composite(packed, blue, ids, starts, order, TILE_PX, tiles_x, width, height, bg, out, fast)
    return out
