"""Real spherical harmonics for view-dependent Gaussian colour (degrees 0 to 3).

Formulation (3D Gaussian splatting, Kerbl et al. 2023, as in gsplat 1.5.3): the colour of a
Gaussian seen along the unit direction ``d`` (from the camera centre to the Gaussian mean) is

    c(d) = max(0, sum_k Y_k(d) f_k + 0.5),   k = 0 .. (degree + 1)^2 - 1,

with ``f_k`` [3] the stored coefficients (``f_dc`` = f_0, ``f_rest`` = f_1..) and ``Y_k`` the real
SH basis in the sign convention of the reference 3DGS code (Sloan 2013 evaluation order). The
+0.5 offset and the clamp at 0 mirror gsplat's ``rasterization`` so that renders agree.
"""

from __future__ import annotations

import torch
from torch import Tensor

#: Y_0 = 1 / (2 sqrt(pi)): converts an RGB colour to the DC coefficient and back.
SH_C0 = 0.28209479177387814
#: Highest supported degree (16 coefficients), the one the 3DGS PLY format uses.
MAX_SH_DEGREE = 3


class ShError(ValueError):
    """A spherical-harmonics argument has an unsupported degree or shape."""


def num_sh_bases(degree: int) -> int:
    """Number of coefficients K = (degree + 1)^2 of an SH expansion of ``degree``."""
    return (degree + 1) ** 2


def rgb_to_sh_dc(rgb: Tensor) -> Tensor:
    """DC coefficients [..., 3] that render as ``rgb`` [..., 3] (in [0, 1]) at degree 0."""
    return (rgb - 0.5) / SH_C0


def sh_dc_to_rgb(dc: Tensor) -> Tensor:
    """Colour [..., 3] of DC coefficients [..., 3] (the view-independent part), clamped at 0."""
    return torch.clamp_min(dc * SH_C0 + 0.5, 0.0)


def sh_bases(degree: int, dirs: Tensor) -> Tensor:
    """Real SH basis values [..., (degree+1)^2] at unit directions ``dirs`` [..., 3].

    Raises:
        ShError: ``degree`` is outside [0, 3].
    """
    if not 0 <= degree <= MAX_SH_DEGREE:
        raise ShError(f"sh degree {degree} outside [0, {MAX_SH_DEGREE}]")
    x, y, z = dirs.unbind(-1)
    bases = [torch.full_like(x, SH_C0)]
    if degree >= 1:
        c1 = 0.48860251190292
        bases += [-c1 * y, c1 * z, -c1 * x]
    if degree >= 2:
        xx, yy, zz = x * x, y * y, z * z
        bases += [
            1.0925484305920792 * x * y,
            -1.0925484305920792 * y * z,
            0.31539156525252005 * (2.0 * zz - xx - yy),
            -1.0925484305920792 * x * z,
            0.5462742152960396 * (xx - yy),
        ]
    if degree >= 3:
        bases += [
            -0.5900435899266435 * y * (3.0 * xx - yy),
            2.890611442640554 * x * y * z,
            -0.4570457994644658 * y * (4.0 * zz - xx - yy),
            0.3731763325901154 * z * (2.0 * zz - 3.0 * xx - 3.0 * yy),
            -0.4570457994644658 * x * (4.0 * zz - xx - yy),
            1.445305721320277 * z * (xx - yy),
            -0.5900435899266435 * x * (xx - 3.0 * yy),
        ]
    return torch.stack(bases, dim=-1)


def eval_sh_colors(
    degree: int,
    dirs: Tensor,  # [N, 3] camera centre -> Gaussian (need not be unit)
    coeffs: Tensor,  # [N, K, 3] with K >= (degree + 1)^2
) -> Tensor:
    """Colours [N, 3] of SH ``coeffs`` seen along ``dirs``, offset by 0.5 and clamped at 0.

    Raises:
        ShError: the degree is unsupported or ``coeffs`` has too few coefficients.
    """
    k = num_sh_bases(degree)
    if coeffs.ndim != 3 or coeffs.shape[-1] != 3 or coeffs.shape[1] < k:
        raise ShError(
            f"sh coefficients of shape {tuple(coeffs.shape)} cannot give degree {degree}: "
            f"need [N, K >= {k}, 3]"
        )
    unit = torch.nn.functional.normalize(dirs, dim=-1)
    basis = sh_bases(degree, unit)  # [N, k]
    rgb = torch.einsum("nk,nkc->nc", basis, coeffs[:, :k, :])
    return torch.clamp_min(rgb + 0.5, 0.0)
