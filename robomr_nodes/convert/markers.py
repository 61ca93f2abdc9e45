"""visualization_msgs/MarkerArray builders for RViz: boxes, line sets, text."""

from __future__ import annotations

from typing import Any

import numpy as np

from geometry.boxes import box_corners
from robomr_nodes.convert.path import pose_msg
from robomr_nodes.messages import new_message

RGBA = tuple[float, float, float, float]
LABEL_COLORS: dict[str, RGBA] = {
    "car": (0.1, 0.8, 0.2, 1.0),
    "van": (0.1, 0.6, 0.9, 1.0),
    "truck": (0.9, 0.6, 0.1, 1.0),
    "bus": (0.8, 0.2, 0.8, 1.0),
    "target": (1.0, 0.1, 0.1, 1.0),
}
_DEFAULT_COLOR: RGBA = (0.9, 0.9, 0.9, 1.0)
# Box edges as corner index pairs (corner order of geometry.boxes.box_corners).
_EDGES = [
    (0, 1),
    (1, 2),
    (2, 3),
    (3, 0),
    (4, 5),
    (5, 6),
    (6, 7),
    (7, 4),
    (0, 4),
    (1, 5),
    (2, 6),
    (3, 7),
]


def _marker(header: Any, ns: str, ident: int, mtype: int, **fields: Any) -> Any:
    return new_message(
        "visualization_msgs/msg/Marker",
        header=header,
        ns=ns,
        id=ident,
        type=mtype,
        action=0,
        **fields,
    )


def _color(rgba: RGBA) -> Any:
    r, g, b, a = rgba
    return new_message("std_msgs/msg/ColorRGBA", r=r, g=g, b=b, a=a)


def _point(p: np.ndarray) -> Any:
    return new_message(
        "geometry_msgs/msg/Point",
        x=float(p[0]),
        y=float(p[1]),
        z=float(p[2]) if len(p) > 2 else 0.0,
    )


def delete_all(header: Any, ns: str = "") -> Any:
    """A DELETEALL marker: clears this namespace's markers of the previous frame."""
    return new_message("visualization_msgs/msg/Marker", header=header, ns=ns, action=3)


def line_list(
    header: Any, ns: str, ident: int, segments: np.ndarray, rgba: RGBA, width_m: float = 0.05
) -> Any:
    """A LINE_LIST marker of segments [K, 2, 3] (or [K, 2, 2] on the ground)."""
    seg = np.asarray(segments, dtype=np.float64).reshape(-1, 2, segments.shape[-1])
    pts = [_point(p) for pair in seg for p in pair]
    return _marker(
        header,
        ns,
        ident,
        5,
        pose=pose_msg(0, 0, 0),
        scale=new_message("geometry_msgs/msg/Vector3", x=width_m),
        color=_color(rgba),
        points=pts,
    )


def text(
    header: Any,
    ns: str,
    ident: int,
    position: np.ndarray,
    label: str,
    rgba: RGBA = _DEFAULT_COLOR,
    size_m: float = 0.8,
) -> Any:
    """A TEXT_VIEW_FACING marker."""
    return _marker(
        header,
        ns,
        ident,
        9,
        pose=pose_msg(position[0], position[1], 0.0, z_m=position[2]),
        scale=new_message("geometry_msgs/msg/Vector3", z=size_m),
        color=_color(rgba),
        text=label,
    )


def boxes_to_markers(
    header: Any,
    boxes: np.ndarray,
    labels: list[str],
    scores: np.ndarray | None = None,
    ns: str = "boxes",
) -> Any:
    """A MarkerArray: DELETEALL, then a wireframe and a text label per box [N, 7]."""
    markers = [delete_all(header, ns)]
    if len(boxes):
        corners = box_corners(np.asarray(boxes))
        for i, (c, label) in enumerate(zip(corners, labels, strict=True)):
            rgba = LABEL_COLORS.get(label, _DEFAULT_COLOR)
            segs = np.array([[c[a], c[b]] for a, b in _EDGES])
            markers.append(line_list(header, ns, 2 * i, segs, rgba))
            caption = label if scores is None else f"{label} {float(scores[i]):.2f}"
            top = c[4:].mean(axis=0) + np.array([0.0, 0.0, 0.5])
            markers.append(text(header, ns, 2 * i + 1, top, caption, rgba))
    return new_message("visualization_msgs/msg/MarkerArray", markers=markers)
