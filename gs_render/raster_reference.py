"""A slow, obviously correct per-pixel Gaussian rasterizer (tests only; tiny images).

It restates the 3D Gaussian splatting image formation (Kerbl et al. 2023) with gsplat 1.5.3's
constants, one Gaussian and one pixel at a time, in float64 Python arithmetic and without any
tiling, bounding boxes or vectorization, so the fast rasterizers can be checked against it:

    Sigma = R(q) diag(s)^2 R(q)^T;  t = R_cw mu + t_cw, kept if near <= t_z <= far
    Sigma_2d = J R_cw Sigma R_cw^T J^T + 0.3 I   (J at the mean, x/z and y/z clamped to 1.3 FOV)
    per pixel centre p, Gaussians by increasing t_z:
        alpha = min(0.999, o exp(-0.5 (p - m)^T Sigma_2d^-1 (p - m)));  skip alpha < 1/255
        stop before the Gaussian that would bring T to <= 1e-4;  C += c alpha T;  T *= 1 - alpha
    colour = C + T background,  alpha = 1 - T.
"""

from __future__ import annotations

import math

import numpy as np


def _rotation(q: np.ndarray) -> np.ndarray:
    w, x, y, z = q / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def _project_one(
    mean: np.ndarray,
    quat: np.ndarray,
    scale: np.ndarray,
    viewmat: np.ndarray,
    k: np.ndarray,
    width: int,
    height: int,
) -> tuple[np.ndarray, np.ndarray, float]:
    """(pixel mean [2], inverse 2D covariance [2, 2], depth) of one Gaussian."""
    rot_cw, t_cw = viewmat[:3, :3], viewmat[:3, 3]
    x, y, z = rot_cw @ mean + t_cw
    fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2], k[1, 2]
    u = min(max(x / z, -(cx / fx + 0.15 * width / fx)), (width - cx) / fx + 0.15 * width / fx)
    v = min(max(y / z, -(cy / fy + 0.15 * height / fy)), (height - cy) / fy + 0.15 * height / fy)
    jac = np.array([[fx / z, 0.0, -fx * u / z], [0.0, fy / z, -fy * v / z]])
    rot = _rotation(quat)
    cov3 = rot @ np.diag(scale**2) @ rot.T
    cov2 = jac @ rot_cw @ cov3 @ rot_cw.T @ jac.T + 0.3 * np.eye(2)
    return np.array([fx * x / z + cx, fy * y / z + cy]), np.linalg.inv(cov2), float(z)


def rasterize_reference(
    means: np.ndarray,  # [N, 3] world (m)
    quats: np.ndarray,  # [N, 4] (w, x, y, z)
    scales: np.ndarray,  # [N, 3] standard deviations (m)
    opacities: np.ndarray,  # [N]
    colors: np.ndarray,  # [N, 3]
    viewmat: np.ndarray,  # [4, 4] world -> camera optical
    k: np.ndarray,  # [3, 3]
    width: int,
    height: int,
    near_m: float = 0.01,
    far_m: float = 1e10,
    background: np.ndarray | None = None,  # [3]
) -> tuple[np.ndarray, np.ndarray]:
    """Renders one camera; returns float64 (colours [H, W, 3], alphas [H, W, 1])."""
    args = [np.asarray(a, dtype=np.float64) for a in (means, quats, scales, viewmat, k)]
    means, quats, scales, viewmat, k = args
    gaussians = []
    for i in range(len(means)):
        depth = float(viewmat[2, :3] @ means[i] + viewmat[2, 3])
        if near_m <= depth <= far_m:
            mean2d, conic, _ = _project_one(
                means[i], quats[i], scales[i], viewmat, k, width, height
            )
            gaussians.append((depth, i, mean2d, conic))
    gaussians.sort(key=lambda g: (g[0], g[1]))
    bg = np.zeros(3) if background is None else np.asarray(background, dtype=np.float64)
    rgb = np.zeros((height, width, 3))
    alpha = np.zeros((height, width, 1))
    for row in range(height):
        for col in range(width):
            px, py = col + 0.5, row + 0.5
            trans, acc = 1.0, np.zeros(3)
            for _, i, (mx, my), conic in gaussians:
                dx, dy = px - mx, py - my
                sigma = (
                    0.5 * (conic[0, 0] * dx * dx + conic[1, 1] * dy * dy) + conic[0, 1] * dx * dy
                )
                a = min(0.999, float(opacities[i]) * math.exp(-sigma))
                if sigma < 0.0 or a < 1.0 / 255.0:
                    continue
                if trans * (1.0 - a) <= 1e-4:
                    break
                acc += np.asarray(colors[i], dtype=np.float64) * a * trans
                trans *= 1.0 - a
            rgb[row, col] = acc + trans * bg
            alpha[row, col, 0] = 1.0 - trans
    return rgb, alpha
