"""The Gaussian-splatting renderer as a served model (``POST /v1/render``): a pose in, an image out.

The operator view is rendered at the edge (GSRMR, arXiv 2504.13697): the robot sends its camera
pose and intrinsics, the service renders the map with ``gs_render.GaussianRenderer`` (what the
``gs_render`` node calls). The brownout path renders at ``1 / brownout_scale`` of the resolution
(intrinsics scaled alike) and enlarges the result to the requested size by pixel replication, so
the response keeps its shape; the cost is the PSNR against the full render (``robomr bench
serving`` measures it).

Request: arrays ``T_world_camera_optical`` float64 [4, 4] and ``K`` float64 [3, 3]; header
``width`` and ``height`` (px, in [1, max_side_px]). Response: ``image`` uint8 [H, W, 3] RGB.
Cost: W x H pixels rendered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from offload.serving.model import ItemError, MemoryModel, ModelError, Path, ServedModel
from offload.serving.wire import Message, WireError


@dataclass(frozen=True)
class RenderRequest:
    T_world_camera_optical: np.ndarray  # [4, 4] float64
    K: np.ndarray  # [3, 3] float64 (px)
    width: int
    height: int


class RenderModel(ServedModel):
    """Renders views of one Gaussian map.

    Args:
        map_model: a ``gs_render.GaussianModel``.
        backend: rasterizer ("auto": gsplat on CUDA, the torch CPU rasterizer otherwise).
        brownout_scale: resolution divisor of the brownout path, in [2, 8].
        max_side_px: largest width or height accepted.
    """

    name = "gs_render"
    route = "/v1/render"
    unit = "pixels"
    has_brownout = True

    def __init__(
        self,
        map_model: Any,
        backend: str = "auto",
        brownout_scale: int = 2,
        max_side_px: int = 2048,
    ) -> None:
        from gs_render import GaussianRenderer, RendererConfig, SkyGradient

        if not 2 <= brownout_scale <= 8:
            raise ModelError(f"brownout_scale={brownout_scale} must be in [2, 8]")
        self.renderer = GaussianRenderer(
            map_model, RendererConfig(backend=backend, sky=SkyGradient())
        )
        self.scale = brownout_scale
        self.max_side_px = max_side_px
        self.max_cost = max_side_px * max_side_px
        self.num_gaussians = len(map_model)
        self.version = f"gs-{self.num_gaussians}g"

    @classmethod
    def from_options(
        cls,
        map_path: str = "",
        backend: str = "auto",
        brownout_scale: int = 2,
        max_side_px: int = 2048,
    ) -> RenderModel:
        """Loads a 3DGS .ply map (``robomr demo --offload`` writes the demo's map to one).

        Raises:
            ModelError: no map path, or the file is not a valid 3DGS PLY.
        """
        from gs_render import PlyError, load_ply

        if not map_path:
            raise ModelError("gs_render needs a map: pass --render-map FILE.ply")
        try:
            return cls(load_ply(map_path), backend, brownout_scale, max_side_px)
        except (OSError, PlyError) as err:
            raise ModelError(f"cannot load the render map {map_path}: {err}") from err

    def parse(self, message: Message) -> RenderRequest:
        sizes = [message.field(k, int) for k in ("width", "height")]
        for key, size in zip(("width", "height"), sizes, strict=True):
            if not 1 <= size <= self.max_side_px:
                raise WireError(f"{key}={size} must be in [1, {self.max_side_px}] px")
        return RenderRequest(
            message.array("T_world_camera_optical", "<f8", 2, (4, 4)),
            message.array("K", "<f8", 2, (3, 3)),
            *sizes,
        )

    def cost(self, request: RenderRequest, path: Path) -> int:
        w, h = request.width, request.height
        if path == "brownout":
            w, h = -(-w // self.scale), -(-h // self.scale)
        return w * h

    def memory(self, path: Path) -> MemoryModel:
        # Per pixel: float RGB + alpha + depth-sorted composite buffers of the CPU rasterizer
        # (about 16 floats); per request: projected Gaussians (about 20 floats each).
        return MemoryModel(fixed_bytes_per_item=80.0 * self.num_gaussians, bytes_per_unit=64.0)

    def run(self, batch: Sequence[RenderRequest], path: Path) -> list[Any]:
        return [self._render_one(r, path) for r in batch]

    def _render_one(self, r: RenderRequest, path: Path) -> Any:
        from gs_render import RendererError

        w, h, k = r.width, r.height, np.array(r.K, dtype=np.float64)
        if path == "brownout":
            w, h = -(-w // self.scale), -(-h // self.scale)
            k[:2] *= np.array([[w / r.width], [h / r.height]])
        try:
            rgb, _ = self.renderer.render(r.T_world_camera_optical, k, w, h)
        except RendererError as err:
            return ItemError(str(err))
        return enlarge(rgb, r.width, r.height) if path == "brownout" else rgb

    def example(self) -> RenderRequest:
        """A 160 x 120 view from the map's centroid, looking along +x."""
        pose = np.eye(4)
        pose[:3, :3] = [[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]  # optical z = +x
        pose[:3, 3] = self.renderer.model.means.mean(0).cpu().numpy() + np.array([0.0, 0.0, 1.5])
        k = np.array([[120.0, 0.0, 80.0], [0.0, 120.0, 60.0], [0.0, 0.0, 1.0]])
        return RenderRequest(pose, k, 160, 120)

    def encode(self, result: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        return {}, {"image": np.ascontiguousarray(result, dtype=np.uint8)}


def enlarge(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image`` [h, w, C] resized to [height, width, C] by nearest-pixel replication."""
    h, w = image.shape[:2]
    rows = np.minimum((np.arange(height) * h) // height, h - 1)
    cols = np.minimum((np.arange(width) * w) // width, w - 1)
    return image[rows][:, cols]
