"""Moving vehicles that keep their lane and yield to the robot.

``Scene.at_time`` moves every vehicle blindly along its heading, which drives it through a robot
standing in its lane. ``Traffic`` integrates the same motion step by step, but a vehicle waits
while any *blocker* footprint (the robot) lies in its lane corridor within ``gap_m`` ahead of
its front bumper, and drives on once the corridor is clear:

    ahead_i(t) = { p in blocker : -l_i / 2 <= (p - c_i) . h_i - l_i / 2 <= gap_m,
                                  |(p - c_i) x h_i| <= w_i / 2 + margin_m }

(any point of the blocker's footprint, not only its corners: a robot standing across a lane
has its corners on both sides of the corridor).
    x_i(t + dt) = x_i(t) + dt * v_i * h_i   if ahead_i(t) is empty, else x_i(t)

(c_i centre, h_i unit heading, l_i, w_i length and width). Vehicles wrap around the street's
x range as in ``at_time``. This is a stop-and-go rule, not a car-following model: enough to keep
the simulated street physically consistent, not a traffic simulation.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from sim.scene import Scene


class TrafficError(ValueError):
    """A bad time step or gap."""


class Traffic:
    """The movers of a scene, advanced with :meth:`step`.

    Args:
        scene: the scene at t = 0; its vehicles with ``speed_mps != 0`` move.
        gap_m: free distance a vehicle keeps in front of a blocker (m), > 0.
        margin_m: lateral margin added to the vehicle's half width for the corridor (m), >= 0.
    """

    def __init__(self, scene: Scene, gap_m: float = 6.0, margin_m: float = 0.5) -> None:
        if not (
            math.isfinite(gap_m) and gap_m > 0.0 and math.isfinite(margin_m) and margin_m >= 0.0
        ):
            raise TrafficError(f"need gap_m > 0 and margin_m >= 0, got {gap_m}, {margin_m}")
        self.gap_m = gap_m
        self.margin_m = margin_m
        self._scene = scene
        self._movers = [i for i, o in enumerate(scene.objects) if o.speed_mps != 0.0]
        self._boxes = {i: np.array(scene.objects[i].box, dtype=np.float64) for i in self._movers}
        self.waiting = {i: False for i in self._movers}

    @property
    def has_movers(self) -> bool:
        return bool(self._movers)

    def _blocked(self, i: int, blockers: list[np.ndarray]) -> bool:
        box = self._boxes[i]
        heading = np.array([math.cos(box[6]), math.sin(box[6])])
        half = 0.5 * box[4] + self.margin_m
        for poly in blockers:  # [P, 2] convex footprint corners
            rel = poly - box[:2]
            along = rel @ heading - 0.5 * box[3]
            across = rel[:, 1] * heading[0] - rel[:, 0] * heading[1]
            # the footprint meets the corridor (not only one of its corners: a robot standing
            # across a lane has its corners on both sides of it): separating axes of the
            # corridor rectangle and of the footprint's edges
            if (along.max() < -0.5 * box[3] or along.min() > self.gap_m
                    or across.max() < -half or across.min() > half):  # fmt: skip
                continue
            corridor = np.array([[-0.5 * box[3], -half], [self.gap_m, -half],
                                 [self.gap_m, half], [-0.5 * box[3], half]])  # fmt: skip
            local = np.column_stack([along, across])
            edges = np.roll(local, -1, axis=0) - local
            normals = np.column_stack([edges[:, 1], -edges[:, 0]])
            apart = any(
                (corridor @ n).min() > (local @ n).max() or (corridor @ n).max() < (local @ n).min()
                for n in normals
            )
            if not apart:
                return True
        return False

    def step(self, dt_s: float, blockers: list[np.ndarray]) -> None:
        """Advances every mover by ``dt_s`` unless a blocker footprint [P, 2] is ahead of it.

        Raises:
            TrafficError: ``dt_s`` is not finite and > 0.
        """
        if not (math.isfinite(dt_s) and dt_s > 0.0):
            raise TrafficError(f"dt_s={dt_s} must be finite and > 0")
        x0, x1 = self._scene.street_x_range_m
        for i in self._movers:
            self.waiting[i] = self._blocked(i, blockers)
            if self.waiting[i]:
                continue
            box, speed = self._boxes[i], self._scene.objects[i].speed_mps
            box[0] = x0 + (box[0] + speed * dt_s * math.cos(box[6]) - x0) % (x1 - x0)
            box[1] += speed * dt_s * math.sin(box[6])

    def scene(self) -> Scene:
        """The scene with every mover at its current position."""
        objects = list(self._scene.objects)
        for i in self._movers:
            objects[i] = replace(objects[i], box=tuple(float(v) for v in self._boxes[i]))
        return replace(self._scene, objects=tuple(objects))
