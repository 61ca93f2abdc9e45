"""EWA projection of 3D Gaussians into one pinhole camera (OpenCV optical frame).

Formulation (EWA splatting, Zwicker et al. 2002; 3D Gaussian splatting, Kerbl et al. 2023;
semantics of gsplat 1.5.3 ``fully_fused_projection`` in "classic" mode):

    Sigma_w = R(q) diag(s)^2 R(q)^T                      3D covariance (quaternion w, x, y, z)
    t = R_cw mu + t_cw                                   mean in the camera frame (viewmat)
    Sigma_2d = J R_cw Sigma_w R_cw^T J^T + eps2d I       eps2d = 0.3 px^2 low-pass dilation
    J = [[fx/tz, 0, -fx tx'/tz^2], [0, fy/tz, -fy ty'/tz^2]]

where tx'/tz, ty'/tz are clamped to 1.3x the field of view (as gsplat does, so that Gaussians far
outside the image do not blow up). The conic is Sigma_2d^-1 stored as (a, b, c):
sigma(d) = 0.5 (a dx^2 + c dy^2) + b dx dy. A Gaussian is culled when its depth is outside
[near, far], det(Sigma_2d) <= 0, its opacity is below 1/255, or its bounding box is off-screen.
The box half-extent is ceil(e sqrt(Sigma_2d[i, i])) with the opacity-aware extent
e = min(3.33, sqrt(2 ln(255 o))) (gsplat; Radl et al. 2024): outside it alpha < 1/255, so every
pixel a Gaussian can touch lies inside its box. Survivors are returned sorted front to back.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

#: Low-pass dilation added to every 2D covariance (px^2), gsplat's ``eps2d``.
EPS2D_PX2 = 0.3
#: Smallest alpha that contributes to a pixel (gsplat's ALPHA_THRESHOLD).
ALPHA_THRESHOLD = 1.0 / 255.0
#: Largest box extent in standard deviations (gsplat).
MAX_EXTENT_SIGMA = 3.33


@dataclass(frozen=True)
class Projected:
    """The Gaussians visible in one camera, sorted front to back (M of the N inputs)."""

    ids: Tensor  # [M] int64 index into the input Gaussians
    means2d: Tensor  # [M, 2] pixel coordinates (x right, y down; pixel (i, j) centre = j+.5, i+.5)
    conics: Tensor  # [M, 3] (a, b, c) of the inverse 2D covariance (1/px^2)
    opacities: Tensor  # [M] in [1/255, 1]
    depths: Tensor  # [M] camera-frame z (m), ascending
    radii: Tensor  # [M, 2] int64 box half-extent (px) in x and y


def quat_to_rotmat(quats: Tensor) -> Tensor:
    """Rotation matrices [..., 3, 3] of quaternions [..., 4] in (w, x, y, z) order (normalized)."""
    w, x, y, z = torch.nn.functional.normalize(quats, dim=-1).unbind(-1)
    rows = [
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ]  # fmt: skip
    return torch.stack(rows, dim=-1).reshape(*quats.shape[:-1], 3, 3)


def camera_center(viewmat: Tensor) -> Tensor:
    """Camera centre [3] in the world frame of a world->camera ``viewmat`` [4, 4]."""
    rot, trans = viewmat[:3, :3], viewmat[:3, 3]
    return -(rot.T @ trans)


def _screen_jacobian(
    means_c: Tensor,  # [N, 3]
    intrinsics: Tensor,  # [3, 3]
    width: int,
    height: int,
) -> tuple[Tensor, Tensor, Tensor]:
    """Pixel means [N, 2] and the non-zero Jacobian entries at the (clamped) means:
    J = [[j[:, 0], 0, j[:, 1]], [0, j[:, 2], j[:, 3]]] as j [N, 4]."""
    fx, fy = intrinsics[0, 0], intrinsics[1, 1]
    cx, cy = intrinsics[0, 2], intrinsics[1, 2]
    tx, ty, tz = means_c.unbind(-1)
    means2d = torch.stack([fx * tx / tz + cx, fy * ty / tz + cy], dim=-1)
    tan_fovx, tan_fovy = 0.5 * width / fx, 0.5 * height / fy
    lim_x_pos = (width - cx) / fx + 0.3 * tan_fovx
    lim_x_neg = cx / fx + 0.3 * tan_fovx
    lim_y_pos = (height - cy) / fy + 0.3 * tan_fovy
    lim_y_neg = cy / fy + 0.3 * tan_fovy
    u = torch.maximum(torch.minimum(tx / tz, lim_x_pos), -lim_x_neg)
    v = torch.maximum(torch.minimum(ty / tz, lim_y_pos), -lim_y_neg)
    return means2d, torch.stack([fx / tz, -fx * u / tz, fy / tz, -fy * v / tz], dim=-1)


def project(
    means: Tensor,  # [N, 3] world (m)
    quats: Tensor,  # [N, 4] (w, x, y, z)
    scales: Tensor,  # [N, 3] standard deviations (m)
    opacities: Tensor,  # [N] in [0, 1]
    viewmat: Tensor,  # [4, 4] world -> camera optical
    intrinsics: Tensor,  # [3, 3] K (px)
    width: int,
    height: int,
    near_m: float,
    far_m: float,
) -> Projected:
    """Projects and culls the Gaussians for one camera; differentiable in the float inputs."""
    rot_cw, trans_cw = viewmat[:3, :3], viewmat[:3, 3]
    means_c = means @ rot_cw.T + trans_cw  # [N, 3]
    with torch.no_grad():
        in_range = (means_c[:, 2] >= near_m) & (means_c[:, 2] <= far_m)
        in_range &= opacities >= ALPHA_THRESHOLD
    keep = torch.nonzero(in_range).squeeze(1)
    means_c = means_c.index_select(0, keep)
    # M = R_cw R(q) diag(s): Sigma_c = M M^T, so Sigma_2d = (J M)(J M)^T, symmetric by construction.
    factor = torch.einsum("ij,njk->nik", rot_cw, quat_to_rotmat(quats.index_select(0, keep)))
    factor = factor * scales.index_select(0, keep)[:, None, :]  # [K, 3, 3]
    means2d, jac = _screen_jacobian(means_c, intrinsics, width, height)
    jm_x = jac[:, 0:1] * factor[:, 0] + jac[:, 1:2] * factor[:, 2]  # [K, 3] first row of J M
    jm_y = jac[:, 2:3] * factor[:, 1] + jac[:, 3:4] * factor[:, 2]  # [K, 3] second row
    cov_xx = (jm_x * jm_x).sum(-1) + EPS2D_PX2
    cov_xy = (jm_x * jm_y).sum(-1)
    cov_yy = (jm_y * jm_y).sum(-1) + EPS2D_PX2
    opac = opacities.index_select(0, keep)
    with torch.no_grad():
        det = cov_xx * cov_yy - cov_xy * cov_xy
        extent = torch.sqrt(2.0 * torch.log(opac * 255.0)).clamp(max=MAX_EXTENT_SIGMA)
        radius_x = torch.ceil(extent * torch.sqrt(cov_xx))
        radius_y = torch.ceil(extent * torch.sqrt(cov_yy))
        mx, my = means2d[:, 0], means2d[:, 1]
        visible = (det > 0) & ((radius_x > 0) | (radius_y > 0))
        visible &= (mx + radius_x > 0) & (mx - radius_x < width)
        visible &= (my + radius_y > 0) & (my - radius_y < height)
        sel = torch.nonzero(visible).squeeze(1)
        order = sel[torch.argsort(means_c[:, 2].index_select(0, sel), stable=True)]
        radii = torch.stack([radius_x, radius_y], dim=-1).index_select(0, order).long()
    # One gather of everything the compositor needs, in depth order; the division comes after
    # it so that culled rows (which may have det <= 0) never enter the autograd graph.
    packed = torch.stack(
        [means2d[:, 0], means2d[:, 1], cov_xx, cov_xy, cov_yy, opac, means_c[:, 2]], dim=-1
    ).index_select(0, order)  # [M, 7]
    sel_xx, sel_xy, sel_yy = packed[:, 2], packed[:, 3], packed[:, 4]
    det = sel_xx * sel_yy - sel_xy * sel_xy
    return Projected(
        ids=keep.index_select(0, order),
        means2d=packed[:, 0:2],
        conics=torch.stack([sel_yy / det, -sel_xy / det, sel_xx / det], dim=-1),
        opacities=packed[:, 5],
        depths=packed[:, 6],
        radii=radii,
    )
