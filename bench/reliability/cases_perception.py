"""Cases of ``robomr perception detect|eval|train``: scan files of every format and layout,
model files, settings and output paths."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from bench.reliability.harness import Case, Outcome
from bench.reliability.resources import resources
from bench.reliability.setups import mkdir, write

PCD_HEAD = "VERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\n"
PLY_HEAD = "ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nproperty float y\n"


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


def _npz(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("notes.txt", "not a model")
    return buf.getvalue()


def _torch_dict() -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save({"weights": [1, 2, 3]}, buf)
    return buf.getvalue()


def _scan(
    name: str, content: bytes | str, *names: str, args: tuple[str, ...] = (), named: bool = True
) -> Case:
    return Case(
        f"perception/{name}",
        ("perception", "detect", name, *args),
        names=(name, *names) if named else names,
        setup=write({name: content}),
    )


def _copy(src: str, name: str):
    def setup(ws: Path) -> None:
        resources().copy(getattr(resources(), src), ws, name)

    return setup


def _layout_is(layout: str, src: str, record_bytes: int):
    """A check: the JSON says ``layout`` and every point of the true layout was read (the
    boxes are a function of the points, so the same points give the same boxes)."""

    def check(ws: Path, _out: Outcome) -> str | None:
        data = json.loads((ws / "out.json").read_text())
        want = getattr(resources(), src).stat().st_size // record_bytes
        if data["layout"] != layout or data["num_points"] != want:
            return f"read as {data['layout']} with {data['num_points']} points, not {layout}"
        return None

    return check


def _layout_case(name: str, src: str, layout: str, *args: str) -> Case:
    record = 16 if src == "kitti_scan" else 20
    return Case(
        f"perception/{name}",
        (
            "perception",
            "detect",
            f"{name}.bin" if "." not in name else name,
            "--json",
            "out.json",
            *args,
        ),
        expect="ok",
        setup=_copy(src, f"{name}.bin" if "." not in name else name),
        check=_layout_is(layout, src, record),
    )


NANS = np.full((40, 4), np.nan, dtype="<f4").tobytes()
FAR = np.full((40, 4), 500.0, dtype="<f4").tobytes()

SCANS = [
    Case("perception/scan-missing", ("perception", "detect", "gone.pcd"), names=("gone.pcd",)),
    _scan("scan.xyz", "1 2 3\n", "'.xyz'"),
    _scan("scan.png", b"\x89PNG\r\n", "'.png'"),
    _scan("cut.bin", b"\0" * 17, "17 bytes"),
    _scan("zeros.bin", bytes(160), "ambiguous", "--layout"),
    _scan("cut.pcd.bin", b"\0" * 36, "nuscenes", "36 bytes"),
    _scan("nan.bin", NANS, "0 of 40 points usable"),
    _scan("far.bin", FAR, "0 of 40 points usable", "outside"),
    _scan("empty.bin", b"", "0 of 0 points usable"),
    _scan("f.bin", NANS, "--fields", "needs x, y and z", args=("--fields", "a,b,c,d"), named=False),
    _scan("g.bin", NANS, "x,y,z,x", "named twice", args=("--fields", "x,y,z,x"), named=False),
    _scan("h.bin", NANS, "x,y,,z", "empty field name", args=("--fields", "x,y,,z"), named=False),
    _scan("w.bin", bytes(160 + 4), "not a multiple of 12", args=("--fields", "x,y,z")),
    _scan(
        "p.pcd", PCD_HEAD + "POINTS 1\nDATA ascii\n1 2 3\n", "--layout", args=("--layout", "kitti")
    ),
    _scan("q.ply", PLY_HEAD, "--layout", args=("--fields", "x,y,z")),
    _scan("nofields.pcd", "SIZE 4\nTYPE F\nPOINTS 1\nDATA ascii\n1\n", "FIELDS"),
    _scan("lzf.pcd", PCD_HEAD + "POINTS 1\nDATA binary_compressed\n", "binary_compressed"),
    _scan("short.pcd", PCD_HEAD + "POINTS 9\nDATA binary\n" + "\0" * 20, "truncated"),
    _scan("text.pcd", PCD_HEAD + "POINTS 1\nDATA ascii\n1 two 3\n", "non-numeric"),
    _scan(
        "sizes.pcd",
        "FIELDS x y z\nSIZE 4 4\nTYPE F F F\nPOINTS 1\nDATA ascii\n1 2 3\n",
        "different lengths",
    ),
    _scan(
        "type.pcd",
        "FIELDS x y z\nSIZE 3 3 3\nTYPE F F F\nPOINTS 1\nDATA ascii\n1 2 3\n",
        "TYPE/SIZE",
    ),
    _scan(
        "noz.pcd",
        "FIELDS x y w\nSIZE 4 4 4\nTYPE F F F\nPOINTS 1\nDATA ascii\n1 2 3\n",
        "no z field",
    ),
    _scan("neg.pcd", PCD_HEAD + "POINTS -3\nDATA ascii\n", "POINTS -3"),
    _scan("garbage.pcd", b"\xff\xd8\xff\xe0" * 64, "no 'data' line"),
    _scan(
        "noverts.ply", "ply\nformat ascii 1.0\nelement face 0\nend_header\n", "no 'vertex' element"
    ),
    _scan("fmt.ply", "ply\nformat binary_middle_endian 1.0\nend_header\n", "binary_middle_endian"),
    _scan(
        "elem.ply",
        "ply\nformat ascii 1.0\nelement vertex many\nend_header\n",
        "element vertex many",
    ),
    _scan(
        "listfirst.ply",
        "ply\nformat ascii 1.0\nelement face 1\nproperty list uchar int v\n"
        "element vertex 0\nproperty float x\nend_header\n",
        "before 'vertex'",
    ),
    _scan(
        "cut.ply",
        "ply\nformat binary_little_endian 1.0\nelement vertex 3\nproperty float x\n"
        "property float y\nproperty float z\nend_header\n\0\0",
        "truncated",
    ),
    _scan("notply.ply", "hello\nend_header\n", "not a PLY file"),
    _scan(
        "dupe.ply",
        "ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\n"
        "property float x\nproperty float z\nend_header\n1 2 3\n",
        "duplicate",
    ),
    _scan("flat.npy", _npy(np.zeros(5)), "[N, C >= 3]"),
    _scan("two.npy", _npy(np.zeros((4, 2))), "[N, C >= 3]"),
    _scan("obj.npy", _npy(np.array([{"x": 1}], dtype=object)), "cannot read"),
    _scan("cplx.npy", _npy(np.zeros((3, 3), dtype=complex)), "numeric"),
    _scan(
        "noxyz.npy",
        _npy(np.zeros(3, dtype=[("a", "f4"), ("b", "f4"), ("c", "f4")])),
        "no x/y/z field",
    ),
    _scan("many.npz", _npz(a=np.zeros((3, 3)), b=np.zeros((3, 3))), "no 'points' array"),
    _scan("bad.npz", b"PK\x03\x04 not really a zip", "cannot read"),
    _layout_case("sweep.pcd.bin", "nuscenes_scan", "nuscenes"),
    _layout_case("renamed", "nuscenes_scan", "nuscenes"),
    _layout_case("kitti", "kitti_scan", "kitti"),
    _layout_case("given", "nuscenes_scan", "nuscenes", "--layout", "nuscenes"),
    _layout_case("named", "nuscenes_scan", "fields", "--fields", "x,y,z,intensity,ring"),
]

SCAN = "scan.bin"


def _with_scan(ws: Path) -> None:
    resources().copy(resources().kitti_scan, ws, SCAN)


def _detect(name: str, args: tuple[str, ...], *names: str, setup=None, **kw) -> Case:
    return Case(
        f"perception/{name}",
        ("perception", "detect", SCAN, *args),
        names=names,
        setup=setup or _with_scan,
        **kw,
    )


def _model(name: str, content: bytes | str, *names: str) -> Case:
    def setup(ws: Path) -> None:
        _with_scan(ws)
        write({"m.pt": content})(ws)

    return _detect(f"model-{name}", ("--model", "m.pt"), "m.pt", *names, setup=setup)


SETTINGS = [
    _detect("model-missing", ("--model", "gone.pt"), "gone.pt"),
    _model("text", "hello\n", "not a model file"),
    _model("zip", _zip(), "damaged or foreign"),
    _model("other-torch", _torch_dict(), "not a robomr detector model"),
    _model("empty", b"", "not a model file"),
    _detect("threshold-2", ("--score-threshold", "2"), "--score-threshold", "2"),
    _detect("threshold-nan", ("--score-threshold", "nan"), "--score-threshold", "nan"),
    _detect("threads-0", ("--threads", "0"), "--threads"),
    _detect("device-bogus", ("--device", "quantum"), "quantum"),
    _detect("json-missing-dir", ("--json", "no/dir/o.json"), "no/dir/o.json", creates_nothing=True),
    _detect(
        "json-is-folder", ("--json", "d"), "d", setup=lambda ws: (_with_scan(ws), mkdir("d")(ws))
    ),
    _detect("layout-bogus", ("--layout", "velodyne"), "velodyne"),
    Case(
        "perception/eval-data-missing",
        ("perception", "eval", "--data", "nodata"),
        names=("nodata",),
    ),
    Case(
        "perception/eval-batch-0",
        ("perception", "eval", "--data", "d", "--batch-size", "0"),
        names=("--batch-size",),
        setup=mkdir("d"),
    ),
    Case(
        "perception/eval-not-dataset",
        ("perception", "eval", "--data", "d"),
        names=("d",),
        setup=mkdir("d"),
    ),
    Case(
        "perception/train-out-exists",
        ("perception", "train", "--data", "d", "--out", "m.pt"),
        names=("m.pt", "exists"),
        setup=write({"m.pt": "my earlier model", "d/x": ""}),
    ),
    Case(
        "perception/train-data-missing",
        ("perception", "train", "--data", "nodata", "--out", "m.pt"),
        names=("nodata",),
    ),
    Case(
        "perception/train-epochs-0",
        ("perception", "train", "--data", "d", "--out", "m.pt", "--epochs", "0"),
        names=("epochs",),
        setup=mkdir("d"),
    ),
    Case(
        "perception/train-lr-negative",
        ("perception", "train", "--data", "d", "--out", "m.pt", "--lr", "-1"),
        names=("learning_rate",),
        setup=mkdir("d"),
    ),
    _detect(
        "ok-kitti-json",
        ("--json", "o.json"),
        expect="ok",
        check=lambda ws, out: None if (ws / "o.json").is_file() else "no JSON written",
    ),
]

CASES = [*SCANS, *SETTINGS]
