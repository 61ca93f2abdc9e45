"""vision_msgs/Detection3DArray <-> labelled boxes [N, 7] (see geometry/boxes.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from geometry.boxes import BOX_DIM
from geometry.transforms import quaternion_to_yaw, yaw_to_quaternion
from robomr_nodes.messages import new_message


class DetectionError(ValueError):
    """Boxes, labels and scores that disagree in length or hold non-finite values."""


@dataclass
class BoxList:
    """Labelled boxes in one frame.

    Attributes:
        boxes: [N, 7] x, y, z, length, width, height, yaw (m, rad) in ``frame_id``.
        labels: N class names.
        scores: [N] confidences in [0, 1].
        ids: N tracking/instance ids ("" when unknown).
    """

    boxes: np.ndarray  # [N, 7]
    labels: list[str]
    scores: np.ndarray  # [N]
    ids: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, BOX_DIM)
        self.scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)
        n = len(self.boxes)
        if not self.ids:
            self.ids = [""] * n
        if not (len(self.labels) == len(self.scores) == len(self.ids) == n):
            raise DetectionError(
                f"{n} boxes, {len(self.labels)} labels, {len(self.scores)} "
                f"scores, {len(self.ids)} ids: lengths must agree"
            )
        if not (np.all(np.isfinite(self.boxes)) and np.all(np.isfinite(self.scores))):
            raise DetectionError("boxes and scores must be finite")

    def __len__(self) -> int:
        return len(self.boxes)


def boxes_to_detections(boxes: BoxList, header: Any) -> Any:
    """A Detection3DArray, one Detection3D (one hypothesis) per box."""
    dets = []
    for box, label, score, ident in zip(
        boxes.boxes, boxes.labels, boxes.scores, boxes.ids, strict=True
    ):
        qx, qy, qz, qw = yaw_to_quaternion(box[6])
        pose = new_message(
            "geometry_msgs/msg/Pose",
            position=new_message("geometry_msgs/msg/Point", x=box[0], y=box[1], z=box[2]),
            orientation=new_message("geometry_msgs/msg/Quaternion", x=qx, y=qy, z=qz, w=qw),
        )
        hyp = new_message(
            "vision_msgs/msg/ObjectHypothesisWithPose",
            hypothesis=new_message(
                "vision_msgs/msg/ObjectHypothesis", class_id=label, score=float(score)
            ),
            pose=new_message("geometry_msgs/msg/PoseWithCovariance", pose=pose),
        )
        bbox = new_message(
            "vision_msgs/msg/BoundingBox3D",
            center=pose,
            size=new_message("geometry_msgs/msg/Vector3", x=box[3], y=box[4], z=box[5]),
        )
        dets.append(
            new_message(
                "vision_msgs/msg/Detection3D", header=header, results=[hyp], bbox=bbox, id=ident
            )
        )
    return new_message("vision_msgs/msg/Detection3DArray", header=header, detections=dets)


def detections_to_boxes(msg: Any) -> BoxList:
    """The boxes of a Detection3DArray; label/score from each detection's best hypothesis."""
    boxes, labels, scores, ids = [], [], [], []
    for det in msg.detections:
        c, s, o = det.bbox.center.position, det.bbox.size, det.bbox.center.orientation
        boxes.append([c.x, c.y, c.z, s.x, s.y, s.z, quaternion_to_yaw(o.x, o.y, o.z, o.w)])
        best = max(det.results, key=lambda r: r.hypothesis.score, default=None)
        labels.append(best.hypothesis.class_id if best else "")
        scores.append(best.hypothesis.score if best else 0.0)
        ids.append(det.id)
    return BoxList(np.asarray(boxes).reshape(-1, BOX_DIM), labels, np.asarray(scores), ids)
