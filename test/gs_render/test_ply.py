"""3DGS PLY files: round trips, the header other viewers expect, and malformed files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gs_render.model import GaussianModel, from_surface_samples
from gs_render.ply import PlyError, load_ply, property_names, save_ply
from gs_render.sh import SH_C0, num_sh_bases


def _model(n: int, sh_degree: int | None, seed: int = 0) -> GaussianModel:
    gen = torch.Generator().manual_seed(seed)
    colors = (
        torch.rand(n, 3, generator=gen)
        if sh_degree is None
        else torch.randn(n, num_sh_bases(sh_degree), 3, generator=gen)
    )
    return GaussianModel(
        means=torch.randn(n, 3, generator=gen),
        quats=torch.nn.functional.normalize(torch.randn(n, 4, generator=gen), dim=1),
        scales=torch.rand(n, 3, generator=gen) * 0.5 + 0.01,
        opacities=torch.rand(n, generator=gen) * 0.98 + 0.01,
        colors=colors,
    )


@pytest.mark.parametrize("sh_degree", [None, 0, 1, 3])
def test_save_then_load_round_trips(tmp_path: Path, sh_degree: int | None) -> None:
    model = _model(25, sh_degree)
    save_ply(model, tmp_path / "m.ply")
    loaded = load_ply(tmp_path / "m.ply")
    # float32 storage of log-scales and logits: exp/sigmoid round trips to ~1e-6 relative.
    for name in ("means", "quats", "scales", "opacities"):
        np.testing.assert_allclose(
            getattr(loaded, name), getattr(model, name), rtol=1e-5, atol=1e-6
        )
    if sh_degree is None:  # RGB is stored as the DC coefficient: rgb = 0.5 + Y_0 f_dc
        np.testing.assert_allclose(loaded.colors[:, 0] * SH_C0 + 0.5, model.colors, atol=1e-6)
        assert loaded.sh_degree == 0
    else:
        np.testing.assert_allclose(loaded.colors, model.colors, atol=1e-6)
        assert loaded.sh_degree == sh_degree


def test_header_lists_the_3dgs_properties_in_order(tmp_path: Path) -> None:
    save_ply(_model(3, 3), tmp_path / "m.ply")
    data = (tmp_path / "m.ply").read_bytes()
    header = data[: data.index(b"end_header\n")].decode().splitlines()
    assert header[:3] == ["ply", "format binary_little_endian 1.0", "element vertex 3"]
    props = [line.split() for line in header[3:]]
    assert all(p[:2] == ["property", "float"] for p in props)
    names = [p[2] for p in props]
    assert names == property_names(45)
    assert names[:9] == ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
    assert names[-8:] == [
        "opacity",
        "scale_0",
        "scale_1",
        "scale_2",
        *[f"rot_{i}" for i in range(4)],
    ]
    assert len(data) == len(b"\n".join(h.encode() for h in header)) + 12 + 3 * 4 * len(names)


def test_f_rest_is_channel_major_as_in_the_reference_trainer(tmp_path: Path) -> None:
    model = _model(1, 1)
    save_ply(model, tmp_path / "m.ply")
    data = (tmp_path / "m.ply").read_bytes()
    values = np.frombuffer(data[data.index(b"end_header\n") + 11 :], dtype="<f4")
    rest = values[9:18]  # f_rest_0..8 = channel 0 coefficients 1..3, then channel 1, ...
    np.testing.assert_allclose(rest, model.colors[0, 1:, :].T.reshape(-1).numpy())


def test_surface_model_round_trips_with_opacity_logits_and_log_scales(tmp_path: Path) -> None:
    points = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
    normals = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    model = from_surface_samples(points, normals, np.full((2, 3), 0.5), spacing_m=0.1)
    save_ply(model, tmp_path / "s.ply")
    data = (tmp_path / "s.ply").read_bytes()
    values = np.frombuffer(data[data.index(b"end_header\n") + 11 :], dtype="<f4").reshape(2, -1)
    assert values[0, 9] == pytest.approx(np.log(0.9 / 0.1), abs=1e-5)  # logit(0.9)
    assert values[0, 10] == pytest.approx(np.log(0.09), abs=1e-5)  # log(0.9 * spacing)
    np.testing.assert_allclose(load_ply(tmp_path / "s.ply").means, model.means)


@pytest.mark.parametrize("cut", [1, 4, 30, 200])
def test_truncated_file_raises_a_clear_error(tmp_path: Path, cut: int) -> None:
    save_ply(_model(4, None), tmp_path / "m.ply")
    data = (tmp_path / "m.ply").read_bytes()
    (tmp_path / "t.ply").write_bytes(data[:-cut])
    with pytest.raises(PlyError, match="truncated"):
        load_ply(tmp_path / "t.ply")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.replace(b"binary_little_endian", b"ascii"), "unsupported format"),
        (lambda d: d.replace(b"property float opacity\n", b""), "missing 3DGS properties"),
        (lambda d: d.replace(b"ply\n", b"plx\n", 1), "not a PLY file"),
        (lambda d: d.replace(b"end_header\n", b"end_headr\n"), "not a PLY file"),
        (lambda d: d.replace(b"element vertex 4", b"element vertex -4"), "bad vertex count"),
        (lambda d: d.replace(b"property float f_rest_8\n", b""), "f_rest"),
        (lambda d: d.replace(b"property float x", b"property list x"), "unsupported type"),
    ],
)
def test_malformed_header_raises(tmp_path: Path, edit, message: str) -> None:
    save_ply(_model(4, 1), tmp_path / "m.ply")
    (tmp_path / "bad.ply").write_bytes(edit((tmp_path / "m.ply").read_bytes()))
    with pytest.raises(PlyError, match=message):
        load_ply(tmp_path / "bad.ply")


def test_non_finite_values_in_the_file_raise(tmp_path: Path) -> None:
    save_ply(_model(2, None), tmp_path / "m.ply")
    data = bytearray((tmp_path / "m.ply").read_bytes())
    start = data.index(b"end_header\n") + 11
    data[start : start + 4] = np.float32(np.nan).tobytes()
    (tmp_path / "nan.ply").write_bytes(bytes(data))
    with pytest.raises(PlyError, match="NaN"):
        load_ply(tmp_path / "nan.ply")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_corruption_gives_plyerror_or_a_valid_model(
    tmp_path: Path, data: st.DataObject
) -> None:
    save_ply(_model(3, 1), tmp_path / "m.ply")
    original = bytearray((tmp_path / "m.ply").read_bytes())
    position = data.draw(st.integers(0, len(original) - 1))
    action = data.draw(st.sampled_from(["truncate", "flip", "insert"]))
    if action == "truncate":
        corrupted = original[:position]
    elif action == "flip":
        corrupted = original.copy()
        corrupted[position] ^= data.draw(st.integers(1, 255))
    else:
        corrupted = (
            original[:position] + data.draw(st.binary(min_size=1, max_size=8)) + original[position:]
        )
    (tmp_path / "c.ply").write_bytes(bytes(corrupted))
    try:
        model = load_ply(tmp_path / "c.ply")
    except PlyError:
        return
    assert isinstance(model, GaussianModel) and len(model) == 3
