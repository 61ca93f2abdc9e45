"""Read and write Gaussian models as standard 3D Gaussian splatting PLY files.

Layout (the one written by the reference 3DGS trainer, Kerbl et al. 2023, and read by
common splat viewers): ``format binary_little_endian 1.0``, one ``element vertex N`` with float
properties, in this order:

    x y z                   mean (m)
    nx ny nz                unused normals (written as 0)
    f_dc_0 f_dc_1 f_dc_2    SH DC coefficient per channel
    f_rest_0 .. f_rest_{3(K-1)-1}  higher SH coefficients, channel-major:
                            f_rest_{c (K-1) + j} = coefficient j+1 of channel c
    opacity                 logit(o)
    scale_0 scale_1 scale_2 log of the standard deviations (m)
    rot_0 rot_1 rot_2 rot_3 quaternion (w, x, y, z), not necessarily unit

RGB models are written as DC coefficients, (rgb - 0.5) / Y_0; loading always yields SH
coefficients [N, K, 3]. Extra vertex properties written by other tools are ignored on load.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from gs_render.model import GaussianModel, ModelError
from gs_render.sh import MAX_SH_DEGREE, num_sh_bases, rgb_to_sh_dc

_PLY_TYPES = {
    "float": "<f4", "float32": "<f4", "double": "<f8", "float64": "<f8",
    "uchar": "u1", "uint8": "u1", "char": "i1", "int8": "i1",
    "short": "<i2", "int16": "<i2", "ushort": "<u2", "uint16": "<u2",
    "int": "<i4", "int32": "<i4", "uint": "<u4", "uint32": "<u4",
}  # fmt: skip
_MAX_HEADER_BYTES = 1 << 16
_MIN_OPACITY = 1e-7


class PlyError(ValueError):
    """A PLY file is malformed, truncated, or lacks a property the 3DGS layout needs."""


def property_names(num_rest: int) -> list[str]:
    """Vertex property names of the 3DGS layout with ``num_rest`` f_rest values, in file order."""
    return [
        "x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2",
        *[f"f_rest_{i}" for i in range(num_rest)],
        "opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3",
    ]  # fmt: skip


def save_ply(model: GaussianModel, path: str | Path) -> None:
    """Writes ``model`` to ``path`` (atomically: a temporary file renamed into place)."""
    coeffs = model.colors.detach().cpu().double()
    if coeffs.ndim == 2:
        coeffs = rgb_to_sh_dc(coeffs)[:, None, :]  # [N, 1, 3]
    n, k = coeffs.shape[:2]
    rest = coeffs[:, 1:, :].transpose(1, 2).reshape(n, 3 * (k - 1))  # channel-major
    # Clamped so that the logit stays finite (|logit| <= 16.1).
    opac = model.opacities.detach().cpu().double().clamp(_MIN_OPACITY, 1.0 - _MIN_OPACITY)
    columns = [
        model.means.detach().cpu().double(),
        torch.zeros(n, 3, dtype=torch.float64),
        coeffs[:, 0, :],
        rest,
        torch.log(opac / (1.0 - opac))[:, None],
        torch.log(model.scales.detach().cpu().double()),
        model.quats.detach().cpu().double(),
    ]
    values = torch.cat(columns, dim=1).numpy().astype("<f4")  # [N, 17 + 3(K-1)]
    names = property_names(3 * (k - 1))
    header = "ply\nformat binary_little_endian 1.0\n"
    header += f"element vertex {n}\n"
    header += "".join(f"property float {name}\n" for name in names)
    header += "end_header\n"
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(header.encode("ascii"))
        f.write(np.ascontiguousarray(values).tobytes())
    os.replace(tmp, target)


def _parse_header(data: bytes) -> tuple[int, int, np.dtype]:
    """(header length in bytes, vertex count, vertex record dtype) of a PLY file's bytes."""
    end = data.find(b"end_header\n", 0, _MAX_HEADER_BYTES)
    if not data.startswith(b"ply\n") or end < 0:
        raise PlyError("not a PLY file: missing 'ply' magic or 'end_header' line")
    lines = data[:end].decode("ascii", errors="replace").splitlines()[1:]
    count, fields, element = -1, [], None
    for line in lines:
        words = line.split()
        if not words or words[0] in ("comment", "obj_info"):
            continue
        if words[0] == "format":
            if words[1:] != ["binary_little_endian", "1.0"]:
                raise PlyError(
                    f"unsupported format {' '.join(words[1:])!r}; need binary_little_endian 1.0"
                )
        elif words[0] == "element" and len(words) == 3:
            element = words[1]
            if element != "vertex":
                raise PlyError(f"unsupported element {element!r}: only 'vertex' is allowed")
            count = int(words[2]) if words[2].isdigit() else -1
            if count < 0:
                raise PlyError(f"bad vertex count {words[2]!r}")
        elif words[0] == "property" and len(words) == 3 and element == "vertex":
            if words[1] not in _PLY_TYPES:
                raise PlyError(f"property {words[2]!r} has unsupported type {words[1]!r}")
            if any(words[2] == name for name, _ in fields):
                raise PlyError(f"property {words[2]!r} is declared twice")
            fields.append((words[2], _PLY_TYPES[words[1]]))
        else:
            raise PlyError(f"unsupported header line {line!r}")
    if count < 0:
        raise PlyError("header has no 'element vertex N' line")
    return end + len(b"end_header\n"), count, np.dtype(fields)


def load_ply(path: str | Path) -> GaussianModel:
    """Reads a 3DGS PLY file into a model with SH colours [N, K, 3].

    Raises:
        PlyError: the file is not a binary little-endian PLY, is truncated or too long,
            lacks a required property, has an f_rest count that is not 3((d+1)^2 - 1) for
            d <= 3, or holds values that make an invalid model (NaN, infinite logits).
    """
    data = Path(path).read_bytes()
    offset, count, record = _parse_header(data)
    names = set(record.names or ())
    num_rest = sum(1 for name in names if name.startswith("f_rest_"))
    missing = [name for name in property_names(num_rest) if name not in names]
    if missing:
        raise PlyError(f"{path}: missing 3DGS properties {missing}")
    k = num_rest // 3 + 1
    if num_rest % 3 or k not in [num_sh_bases(d) for d in range(MAX_SH_DEGREE + 1)]:
        raise PlyError(f"{path}: {num_rest} f_rest properties is not 3((d+1)^2 - 1), d <= 3")
    expected = count * record.itemsize
    if len(data) - offset != expected:
        raise PlyError(
            f"{path}: vertex data is {len(data) - offset} bytes, expected {expected} "
            f"({count} vertices of {record.itemsize} bytes); file truncated or padded"
        )
    rows = np.frombuffer(data, dtype=record, count=count, offset=offset)

    def cols(*fields: str) -> torch.Tensor:  # [N, len(fields)] float64
        stacked = np.zeros((count, len(fields)))
        for j, name in enumerate(fields):
            stacked[:, j] = rows[name]
        return torch.from_numpy(stacked)

    dc = cols("f_dc_0", "f_dc_1", "f_dc_2")[:, None, :]  # [N, 1, 3]
    rest = cols(*[f"f_rest_{i}" for i in range(num_rest)]).reshape(count, 3, k - 1)
    quats = cols("rot_0", "rot_1", "rot_2", "rot_3")
    try:
        return GaussianModel(
            means=cols("x", "y", "z").float(),
            quats=torch.nn.functional.normalize(quats, dim=1).float(),
            scales=torch.exp(cols("scale_0", "scale_1", "scale_2")).float(),
            opacities=torch.sigmoid(cols("opacity")[:, 0]).float(),
            colors=torch.cat([dc, rest.transpose(1, 2)], dim=1).float(),
        )
    except ModelError as err:
        raise PlyError(f"{path}: {err}") from err
