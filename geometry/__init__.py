"""Shared geometry: rigid transforms, oriented 3D boxes, convex polytopes.

Pure numpy. Conventions used across robomr:
- right-handed frames, x forward, y left, z up (REP 103); angles in radians;
- a box is ``[x, y, z, length, width, height, yaw]`` (centre in metres, length along the
  box's own x axis, yaw about +z), the OpenPCDet/KITTI-lidar convention;
- a transform ``T_a_b`` (4x4) maps points from frame b into frame a.
"""
