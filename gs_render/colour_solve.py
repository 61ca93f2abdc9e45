"""Colours of a Gaussian map by least squares on uploaded frames, with a compiled splat-back.

With the geometry and opacities fixed, a render is linear in the Gaussians' colours: pixel p
shows ``sum_i w_ip c_i + T_p s_p`` (``w_ip = alpha_i T_i`` the blending weights, ``T_p`` the
transmittance left for the sky ``s_p``). Fitting the colours to the uploaded frames ``I`` is
the linear least-squares problem

    min_c  sum_frames sum_p | sum_i w_ip c_i + T_p s_p - I_p |^2,   0 <= c <= 1,

whose gradient is ``g_i = sum_p w_ip r_p`` (``r`` the render's residual). Because every
``w_ip >= 0``, the Hessian ``W^T W`` is bounded by its row sums, ``D_i = sum_p w_ip alpha_p``
(``alpha_p = sum_j w_jp``, Gershgorin), so

    c_i <- clip(c_i - g_i / D_i, 0, 1)

minimises a separable majoriser of the loss: the loss never rises (majorise-minimise; the
clip is the majoriser's exact minimiser over the box). One step is one render and one
splat-back per frame, both walking each pixel's depth-ordered list as the forward compositor
does (:mod:`gs_render.raster_numba`), so it is cheap enough to run to convergence on the CPU,
unlike the autograd path. Projecting Gaussian centres onto pixels (the map's first colouring)
ignores that neighbouring Gaussians blend; this solves for the colours the renderer needs.
"""

from __future__ import annotations

import math

import numpy as np

from gs_render.raster_numba import TILE_PX, numba_available
from gs_render.raster_torch import ALPHA_MAX, TRANSMITTANCE_MIN

if numba_available():
    from numba import njit

    from gs_render.raster_numba import _bin, _pack

    _LOG_ALPHA_MAX = math.log(ALPHA_MAX)

    @njit(cache=True)
    def _splat_back(
        packed: np.ndarray,  # [M, 9] from _pack
        colors: np.ndarray,  # [M, 3]
        ids: np.ndarray,
        starts: np.ndarray,
        tile: int,
        tiles_x: int,
        width: int,
        height: int,
        sky: np.ndarray,  # [H, W, 3]
        target: np.ndarray,  # [H, W, 3]
        grad: np.ndarray,  # [M, 3] accumulated: sum_p w_ip r_p
        diag: np.ndarray,  # [M] accumulated: sum_p w_ip alpha_p
    ) -> float:
        """Adds one frame's gradient and majoriser diagonal; returns its squared error."""
        loss = 0.0
        for t in range(starts.shape[0] - 1):
            first, last = starts[t], starts[t + 1]
            row0, col0 = (t // tiles_x) * tile, (t % tiles_x) * tile
            for row in range(row0, min(row0 + tile, height)):
                py = row + 0.5
                for col in range(col0, min(col0 + tile, width)):
                    px = col + 0.5
                    trans = 1.0
                    r = g = b = 0.0
                    end = first
                    for k in range(first, last):
                        i = ids[k]
                        dx, dy = px - packed[i, 0], py - packed[i, 1]
                        sigma = packed[i, 2] * dx * dx + packed[i, 4] * dy * dy
                        sigma += packed[i, 3] * dx * dy
                        end = k + 1
                        if sigma > packed[i, 6]:
                            continue
                        alpha = math.exp(min(packed[i, 5] - sigma, _LOG_ALPHA_MAX))
                        after = trans * (1.0 - alpha)
                        if after <= TRANSMITTANCE_MIN:
                            end = k
                            break
                        w = alpha * trans
                        r += colors[i, 0] * w
                        g += colors[i, 1] * w
                        b += colors[i, 2] * w
                        trans = after
                    res0 = r + trans * sky[row, col, 0] - target[row, col, 0]
                    res1 = g + trans * sky[row, col, 1] - target[row, col, 1]
                    res2 = b + trans * sky[row, col, 2] - target[row, col, 2]
                    loss += res0 * res0 + res1 * res1 + res2 * res2
                    covered = 1.0 - trans
                    trans = 1.0
                    for k in range(first, end):  # the same walk, now knowing the residual
                        i = ids[k]
                        dx, dy = px - packed[i, 0], py - packed[i, 1]
                        sigma = packed[i, 2] * dx * dx + packed[i, 4] * dy * dy
                        sigma += packed[i, 3] * dx * dy
                        if sigma > packed[i, 6]:
                            continue
                        alpha = math.exp(min(packed[i, 5] - sigma, _LOG_ALPHA_MAX))
                        w = alpha * trans
                        grad[i, 0] += w * res0
                        grad[i, 1] += w * res1
                        grad[i, 2] += w * res2
                        diag[i] += w * covered
                        trans *= 1.0 - alpha
        return loss


def colour_step(
    frames: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    colors: np.ndarray,  # [N, 3] float64, updated in place
) -> tuple[float, np.ndarray]:
    """One majorise-minimise step over ``frames``: (the mean squared error before it, the
    majoriser diagonal [N], > 0 where a Gaussian shows in some frame).

    ``frames``: per frame (means2d [M, 2], conics [M, 3], opacities [M], radii [M, 2], ids [M]
    into ``colors``, sky [H, W, 3], target [H, W, 3]) as a tuple, projected and depth-sorted.

    Raises:
        RuntimeError: numba is not installed.
    """
    if not numba_available():
        raise RuntimeError("the colour solve needs numba (see requirements.txt)")
    grad = np.zeros_like(colors)
    diag = np.zeros(len(colors))
    loss, pixels = 0.0, 0
    for means2d, conics, opacities, radii, ids, sky, target in frames:
        height, width = target.shape[:2]
        pixels += height * width
        if len(ids) == 0:
            continue
        tiles_x, tiles_y = -(-width // TILE_PX), -(-height // TILE_PX)
        order, starts = _bin(means2d, radii.astype(np.float64), TILE_PX, tiles_x, tiles_y)
        packed = _pack(means2d, conics, opacities, colors[ids])
        local_grad = np.zeros((len(ids), 3))
        local_diag = np.zeros(len(ids))
        loss += _splat_back(packed, colors[ids], order, starts, TILE_PX, tiles_x, width, height,
                            sky, target, local_grad, local_diag)  # fmt: skip
        np.add.at(grad, ids, local_grad)
        np.add.at(diag, ids, local_diag)
    seen = diag > 1e-9
    colors[seen] = np.clip(colors[seen] - grad[seen] / diag[seen, None], 0.0, 1.0)
    return loss / max(3 * pixels, 1), diag
