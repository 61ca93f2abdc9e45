"""Front-to-back alpha compositing of projected Gaussians on the CPU, in vectorized torch.

Formulation (3D Gaussian splatting, Kerbl et al. 2023; semantics of gsplat 1.5.3
``rasterize_to_pixels``): for a pixel centre p and the Gaussians i = 1.. sorted by depth,

    alpha_i = min(0.999, o_i exp(-sigma_i(p))),  sigma_i(p) = 0.5 d^T Sigma_i^-1 d,  d = p - mu_i
    alpha_i < 1/255 is skipped;  T_1 = 1,  T_{i+1} = T_i (1 - alpha_i)
    the pixel stops before the first i with T_{i+1} <= 1e-4 (that Gaussian is excluded)
    C = sum_i c_i alpha_i T_i + T_end b,   A = 1 - T_end = sum_i alpha_i T_i.

Because T is non-increasing, "i contributes" is the prefix condition T_{i+1} > 1e-4 on the
running product of (1 - alpha) over *all* non-skipped Gaussians, so a whole depth chunk of
Gaussians is handled with one cumulative product. The alpha clamp is gsplat's 0.999 (the
original 3DGS code used 0.99); parity with gsplat is the goal.

Two compositors share that chunk step:

* ``composite_tiled`` (the fast path): Gaussians are binned into square tiles by their
  bounding boxes (``projection``), each tile's list stays depth-ordered, and batches of tiles are
  processed in depth chunks of ``depth_chunk`` Gaussians. Per (tile, Gaussian) pair the
  exponent log(o) - sigma is a quadratic polynomial in the pixel's tile-local coordinates, so a
  whole chunk is one matrix product [B*L, 6] x [6, P]. Tiles whose pixels have all terminated,
  or whose list is exhausted, leave the batch (early termination).
* ``composite_dense`` (the straightforward baseline): every pixel chunk against every visible
  Gaussian, with explicit deltas; no binning.

Memory is bounded by ``max_chunk_elements`` (each temporary holds at most that many floats).
Everything is differentiable (autograd) in the projected means, conics, opacities and colours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from gs_render.projection import ALPHA_THRESHOLD, Projected

#: Alpha is clamped to this (gsplat 1.5.3, RasterizeToPixels3DGSFwd.cu).
ALPHA_MAX = 0.999
#: A pixel stops once its transmittance would fall to this or below (gsplat).
TRANSMITTANCE_MIN = 1e-4
#: log(alpha) of padding slots: exp() underflows to exactly 0.
_PAD_LOG_ALPHA = -1e4
_LOG_ALPHA_MAX = math.log(ALPHA_MAX)
_LOG_ALPHA_THRESHOLD = math.log(ALPHA_THRESHOLD)


class RasterTorchError(ValueError):
    """A CPU rasterizer setting is out of range."""


@dataclass(frozen=True)
class TorchRasterConfig:
    """Performance knobs of the CPU rasterizer (results do not depend on them)."""

    tile_size_px: int | None = None  # tile edge (px), [4, 64]; None: chosen per frame
    depth_chunk: int = 32  # Gaussians per tile composited per step, [1, 4096]
    max_chunk_elements: int = 1 << 18  # floats in one [tiles, Gaussians, pixels] temporary, >= 4096
    # "auto": the compiled per-pixel loop (raster_numba) when nothing needs a gradient and
    # numba is present, else the torch compositor; "numba" / "torch" force one.
    kernel: str = "auto"

    def __post_init__(self) -> None:
        if self.kernel not in ("auto", "numba", "torch"):
            raise RasterTorchError(
                f"TorchRasterConfig.kernel={self.kernel!r} is not 'auto', 'numba' or 'torch'"
            )
        limits = {
            "tile_size_px": (8 if self.tile_size_px is None else self.tile_size_px, 4, 64),
            "depth_chunk": (self.depth_chunk, 1, 4096),
            "max_chunk_elements": (self.max_chunk_elements, 4096, 1 << 40),
        }
        for name, (value, low, high) in limits.items():
            if not isinstance(value, int) or not low <= value <= high:
                raise RasterTorchError(
                    f"TorchRasterConfig.{name}={value!r} outside [{low}, {high}]"
                )


def _composite_step(
    log_alpha: Tensor,  # [B, L, P] log(o) - sigma
    colors: Tensor,  # [B, L, 4] RGB and a constant 1 (which accumulates alpha)
    trans: Tensor,  # [B, P] running transmittance before this chunk
) -> tuple[Tensor, Tensor]:
    """One depth chunk: returns (RGB and alpha sums [B, P, 4], transmittance after it [B, P])."""
    alpha = torch.exp(log_alpha.clamp(max=_LOG_ALPHA_MAX))
    alpha = torch.where(log_alpha >= _LOG_ALPHA_THRESHOLD, alpha, 0.0)
    # t[:, i] = T before Gaussian i (i < L); t[:, i + 1] = T after it.
    t = torch.cumprod(torch.cat([trans[:, None, :], 1.0 - alpha], dim=1), dim=1)  # [B, L+1, P]
    t_after = t[:, 1:]
    weight = torch.where(t_after > TRANSMITTANCE_MIN, alpha * t[:, :-1], 0.0)
    return torch.bmm(weight.transpose(1, 2), colors), t_after[:, -1]


def _bin_tiles(
    proj: Projected, tile: int, tiles_x: int, tiles_y: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Depth-ordered Gaussian lists per tile: (flat ids [I], list start [T], list length [T])."""
    device = proj.means2d.device
    with torch.no_grad():
        centre = proj.means2d.detach() / tile
        half = proj.radii.to(centre.dtype) / tile
        x0 = torch.floor(centre[:, 0] - half[:, 0]).clamp(0, tiles_x).long()
        y0 = torch.floor(centre[:, 1] - half[:, 1]).clamp(0, tiles_y).long()
        x1 = torch.ceil(centre[:, 0] + half[:, 0]).clamp(0, tiles_x).long()
        y1 = torch.ceil(centre[:, 1] + half[:, 1]).clamp(0, tiles_y).long()
        span_x = x1 - x0
        counts = span_x * (y1 - y0)  # [M]
        gauss = torch.repeat_interleave(torch.arange(len(counts), device=device), counts)  # [I]
        first = torch.cumsum(counts, 0) - counts
        local = torch.arange(len(gauss), device=device) - first[gauss]
        tile_ids = (
            (y0[gauss] + local // span_x[gauss]) * tiles_x + x0[gauss] + local % span_x[gauss]
        )
        # Gaussians are depth-sorted already, so a stable sort by tile keeps depth order inside.
        order = torch.sort(tile_ids, stable=True).indices
        lengths = torch.bincount(tile_ids, minlength=tiles_x * tiles_y)
        starts = torch.cumsum(lengths, 0) - lengths
    return gauss[order], starts, lengths


def auto_tile_size(radii: Tensor) -> int:
    """The tile edge among 4, 8 and 16 px with the least modelled work for box half-extents
    ``radii`` [M, 2] (px).

    A w x h box costs about (w + t)(h + t) pixel evaluations over the tiles it touches, plus
    per-(tile, Gaussian) overhead worth ~16 evaluations, i.e. (w + t)(h + t)(1 + 16 / t^2).
    (Measured on the benchmark street: 4 px wins for boxes of a few pixels, 8 px from about
    10 px, 16 px never by much on CPU.)
    """
    if len(radii) == 0:
        return 8
    w, h = (2 * radii + 1).to(torch.float64).unbind(-1)
    costs = {t: float(((w + t) * (h + t)).sum()) * (1.0 + 16.0 / t**2) for t in (4, 8, 16)}
    return min(costs, key=lambda t: costs[t])


def _pixel_basis(tile: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """Monomials [6, P] (1, x, y, x^2, y^2, xy) of the tile-local pixel centres, row-major."""
    coords = torch.arange(tile, dtype=dtype, device=device) + 0.5
    py, px = torch.meshgrid(coords, coords, indexing="ij")
    px, py = px.reshape(-1), py.reshape(-1)
    return torch.stack([torch.ones_like(px), px, py, px * px, py * py, px * py])


def _tile_log_alpha(
    params: Tensor,  # [B, L, 6] (mx, my, a, b, c, log o) with means relative to the tile origin
    basis: Tensor,  # [6, P]
) -> Tensor:
    """log(o) - sigma [B, L, P] as the product of per-pair polynomial coefficients and ``basis``."""
    mx, my, a, b, c, log_o = params.unbind(-1)
    coeffs = torch.stack(
        [
            log_o - (0.5 * a * mx * mx + 0.5 * c * my * my + b * mx * my),
            a * mx + b * my,
            c * my + b * mx,
            -0.5 * a,
            -0.5 * c,
            -b,
        ],
        dim=-1,
    )
    return torch.matmul(coeffs, basis)


def composite_tiled(
    proj: Projected,
    colors: Tensor,  # [M, 3] colour of each projected Gaussian
    width: int,
    height: int,
    background: Tensor | None,  # [3] or None (black)
    config: TorchRasterConfig,
) -> tuple[Tensor, Tensor]:
    """Tile-binned compositing; returns (colours [H, W, 3], alphas [H, W, 1])."""
    tile = config.tile_size_px or auto_tile_size(proj.radii)
    tiles_x, tiles_y = -(-width // tile), -(-height // tile)
    n_pix = tile * tile
    dtype, device = proj.means2d.dtype, proj.means2d.device
    flat_ids, starts, lengths = _bin_tiles(proj, tile, tiles_x, tiles_y)
    # One row per Gaussian plus a padding row whose alpha is exactly 0.
    pad = torch.tensor([[0, 0, 0, 0, 0, _PAD_LOG_ALPHA]], dtype=dtype, device=device)
    table = torch.cat(
        [torch.cat([proj.means2d, proj.conics, torch.log(proj.opacities)[:, None]], 1), pad]
    )  # [M + 1, 6]
    rgba_table = torch.cat([_with_ones(colors), colors.new_zeros(1, 4)])  # [M + 1, 4]
    flat_ids = torch.cat([flat_ids, flat_ids.new_tensor([len(table) - 1])])
    basis = _pixel_basis(tile, dtype, device)
    out_tiles, out_rgba = [], []
    busy = torch.nonzero(lengths).squeeze(1)
    busy = busy[torch.argsort(lengths[busy], descending=True, stable=True)]
    per_batch = max(1, config.max_chunk_elements // (config.depth_chunk * n_pix))
    for begin in range(0, len(busy), per_batch):
        tiles = busy[begin : begin + per_batch]
        origin = torch.stack([tiles % tiles_x, tiles // tiles_x], -1).to(dtype) * tile  # [B, 2]
        trans = torch.ones(len(tiles), n_pix, dtype=dtype, device=device)
        rgba = torch.zeros(len(tiles), n_pix, 4, dtype=dtype, device=device)
        pos = 0
        while len(tiles):
            tile_len = lengths[tiles]
            # Once few tiles remain (long lists), take longer chunks within the same budget.
            wide = max(config.depth_chunk, config.max_chunk_elements // (len(tiles) * n_pix))
            chunk = min(wide, int(tile_len.max()) - pos)
            slot = pos + torch.arange(chunk, device=device)
            idx = torch.where(
                slot < tile_len[:, None], starts[tiles][:, None] + slot, len(flat_ids) - 1
            )
            gid = flat_ids[idx]  # [B, L]
            params = table[gid]  # [B, L, 6]
            params = torch.cat([params[..., :2] - origin[:, None, :], params[..., 2:]], -1)
            step, trans = _composite_step(_tile_log_alpha(params, basis), rgba_table[gid], trans)
            rgba = rgba + step
            pos += chunk
            live = (tile_len > pos) & (trans > TRANSMITTANCE_MIN).any(dim=1)
            if not bool(live.all()):
                out_tiles.append(tiles[~live])
                out_rgba.append(rgba[~live])
                tiles, origin, trans, rgba = (t[live] for t in (tiles, origin, trans, rgba))
    planes = torch.zeros(tiles_x * tiles_y, n_pix, 4, dtype=dtype, device=device)
    if out_tiles:
        planes = planes.index_copy(0, torch.cat(out_tiles), torch.cat(out_rgba))
    image = planes.reshape(tiles_y, tiles_x, tile, tile, 4).permute(0, 2, 1, 3, 4)
    image = image.reshape(tiles_y * tile, tiles_x * tile, 4)[:height, :width]
    return _finish(image, background)


def _with_ones(colors: Tensor) -> Tensor:
    """[M, 4]: the colours and a column of ones, so one product also sums the weights."""
    return torch.cat([colors, colors.new_ones(len(colors), 1)], dim=1)


def _finish(rgba: Tensor, background: Tensor | None) -> tuple[Tensor, Tensor]:
    """Splits [H, W, 4] into colour [H, W, 3] (over the background) and alpha [H, W, 1]."""
    rgb, alpha = rgba[..., :3], rgba[..., 3:]
    if background is not None:
        rgb = rgb + (1.0 - alpha) * background
    return rgb, alpha


def composite_dense(
    proj: Projected,
    colors: Tensor,  # [M, 3]
    width: int,
    height: int,
    background: Tensor | None,  # [3] or None
    config: TorchRasterConfig,
) -> tuple[Tensor, Tensor]:
    """Baseline: all Gaussians against every pixel chunk (no binning); same outputs as tiled."""
    dtype, device = proj.means2d.dtype, proj.means2d.device
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=dtype, device=device) + 0.5,
        torch.arange(width, dtype=dtype, device=device) + 0.5,
        indexing="ij",
    )
    pixels = torch.stack([xs.reshape(-1), ys.reshape(-1)], -1)  # [H*W, 2]
    log_o = torch.log(proj.opacities)
    a, b, c = proj.conics.unbind(-1)
    rgba_all = _with_ones(colors)
    chunk = config.depth_chunk
    per_pass = max(1, config.max_chunk_elements // chunk)
    parts = []
    for begin in range(0, len(pixels), per_pass):
        pix = pixels[begin : begin + per_pass]  # [P, 2]
        trans = torch.ones(1, len(pix), dtype=dtype, device=device)
        rgba = torch.zeros(1, len(pix), 4, dtype=dtype, device=device)
        for first in range(0, len(log_o), chunk):
            sl = slice(first, first + chunk)
            dx = pix[None, :, 0] - proj.means2d[sl, 0, None]  # [L, P]
            dy = pix[None, :, 1] - proj.means2d[sl, 1, None]
            sigma = 0.5 * (a[sl, None] * dx * dx + c[sl, None] * dy * dy) + b[sl, None] * dx * dy
            step, trans = _composite_step(
                (log_o[sl, None] - sigma)[None], rgba_all[None, sl], trans
            )
            rgba = rgba + step
            if not bool((trans > TRANSMITTANCE_MIN).any()):
                break
        parts.append(rgba[0])
    return _finish(torch.cat(parts).reshape(height, width, 4), background)
