"""sensor_msgs/Image <-> numpy [H, W, C] arrays (and CameraInfo from intrinsics)."""

from __future__ import annotations

from typing import Any

import numpy as np

from robomr_nodes.messages import new_message


class ImageError(ValueError):
    """An unsupported encoding, or data that does not match height x step."""


# encoding -> (numpy dtype, channels)
ENCODINGS: dict[str, tuple[str, int]] = {
    "rgb8": ("u1", 3),
    "bgr8": ("u1", 3),
    "rgba8": ("u1", 4),
    "bgra8": ("u1", 4),
    "mono8": ("u1", 1),
    "mono16": ("u2", 1),
    "16UC1": ("u2", 1),
    "32FC1": ("f4", 1),
}


def image_to_array(msg: Any) -> np.ndarray:
    """The pixels of an Image as [H, W, C] (C = 1 for mono/depth), in the message's encoding.

    Raises:
        ImageError: unknown encoding, or fewer bytes than height x step.
    """
    if msg.encoding not in ENCODINGS:
        raise ImageError(f"unsupported encoding {msg.encoding!r}; supported: {sorted(ENCODINGS)}")
    base, channels = ENCODINGS[msg.encoding]
    dtype = np.dtype((">" if msg.is_bigendian else "<") + base)
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    row_bytes = w * channels * dtype.itemsize
    data = np.frombuffer(msg.data, dtype=np.uint8)
    if step < row_bytes:
        raise ImageError(f"step {step} < width {w} x {channels} x {dtype.itemsize} bytes")
    if data.size < h * step:
        raise ImageError(f"image data has {data.size} bytes, expected {h} x {step}")
    rows = data[: h * step].reshape(h, step)[:, :row_bytes]
    return (
        np.ascontiguousarray(rows)
        .view(dtype)
        .reshape(h, w, channels)
        .astype(dtype.newbyteorder("="))
    )


def array_to_image(pixels: np.ndarray, header: Any, encoding: str = "rgb8") -> Any:
    """An Image from [H, W, C] or [H, W] pixels in ``encoding``.

    Raises:
        ImageError: unknown encoding, or a shape/dtype that does not match it.
    """
    if encoding not in ENCODINGS:
        raise ImageError(f"unsupported encoding {encoding!r}; supported: {sorted(ENCODINGS)}")
    base, channels = ENCODINGS[encoding]
    px = np.asarray(pixels)
    if px.ndim == 2:
        px = px[:, :, None]
    if px.ndim != 3 or px.shape[2] != channels:
        raise ImageError(f"{encoding} needs [H, W, {channels}] pixels, got {list(px.shape)}")
    if px.dtype != np.dtype(base):
        raise ImageError(f"{encoding} needs dtype {np.dtype(base)}, got {px.dtype}")
    h, w = px.shape[:2]
    data = np.frombuffer(
        np.ascontiguousarray(px.astype(np.dtype("<" + base))).tobytes(), dtype=np.uint8
    )
    return new_message(
        "sensor_msgs/msg/Image",
        header=header,
        height=h,
        width=w,
        encoding=encoding,
        is_bigendian=0,
        step=w * channels * px.dtype.itemsize,
        data=data,
    )


def camera_info(header: Any, k: np.ndarray, width: int, height: int) -> Any:
    """A CameraInfo for an undistorted pinhole camera with intrinsics ``k`` [3, 3]."""
    k = np.asarray(k, dtype=np.float64).reshape(3, 3)
    p = np.zeros((3, 4))
    p[:, :3] = k
    return new_message(
        "sensor_msgs/msg/CameraInfo",
        header=header,
        height=height,
        width=width,
        distortion_model="plumb_bob",
        d=np.zeros(5),
        k=k.reshape(9),
        r=np.eye(3).reshape(9),
        p=p.reshape(12),
    )


def camera_info_to_k(msg: Any) -> np.ndarray:
    """Intrinsics [3, 3] of a CameraInfo."""
    return np.asarray(msg.k, dtype=np.float64).reshape(3, 3)
