"""The Gaussian-splatting renderer as a served model (``POST /v1/render``): a pose in, an image out.

The operator view is rendered at the edge (GSRMR, arXiv 2504.13697): the robot sends its camera
pose and intrinsics, the service renders the map with ``gs_render.GaussianRenderer`` (what the
``gs_render`` node calls). The brownout path renders at ``1 / brownout_scale`` of the resolution
(intrinsics scaled alike) and enlarges the result to the requested size by pixel replication, so
the response keeps its shape; with ``brownout_keep`` < 1 it also renders a decimated map (see
:func:`decimate`): on the CPU the per-Gaussian projection of the whole map costs as much as the
pixels, so a lower resolution alone is at most about 2x cheaper. The cost is the PSNR against the
full render (``robomr bench serving`` measures it).

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
        brownout_scale: resolution divisor of the brownout path, in [1, 8] (1 only with
            ``brownout_keep`` < 1).
        brownout_keep: share of the map's Gaussians the brownout path renders, in (0, 1].
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
        brownout_keep: float = 1.0,
    ) -> None:
        from gs_render import GaussianRenderer, RendererConfig, SkyGradient

        if not 0 < brownout_keep <= 1:
            raise ModelError(f"brownout_keep={brownout_keep} must be in (0, 1]")
        if not (1 if brownout_keep < 1 else 2) <= brownout_scale <= 8:
            raise ModelError(
                f"brownout_scale={brownout_scale} must be in [2, 8] (or 1 with brownout_keep < 1)"
            )
        config = RendererConfig(backend=backend, sky=SkyGradient())
        self.renderer = GaussianRenderer(map_model, config)
        self.keep = brownout_keep
        self.cheap_renderer = (
            GaussianRenderer(decimate(self.renderer.model, brownout_keep), config)
            if brownout_keep < 1
            else self.renderer
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
        brownout_keep: float = 1.0,
    ) -> RenderModel:
        """Loads a 3DGS .ply map (``robomr demo --offload`` writes the demo's map to one).

        Raises:
            ModelError: no map path, or the file is not a valid 3DGS PLY.
        """
        from gs_render import PlyError, load_ply

        if not map_path:
            raise ModelError("gs_render needs a map: pass --render-map FILE.ply")
        try:
            return cls(load_ply(map_path), backend, brownout_scale, max_side_px, brownout_keep)
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
        gaussians = len(self.cheap_renderer.model) if path == "brownout" else self.num_gaussians
        return MemoryModel(fixed_bytes_per_item=80.0 * gaussians, bytes_per_unit=64.0)

    def run(self, batch: Sequence[RenderRequest], path: Path) -> list[Any]:
        return [self._render_one(r, path) for r in batch]

    def _render_one(self, r: RenderRequest, path: Path) -> Any:
        from gs_render import RendererError

        w, h, k = r.width, r.height, np.array(r.K, dtype=np.float64)
        if path == "brownout":
            w, h = -(-w // self.scale), -(-h // self.scale)
            k[:2] *= np.array([[w / r.width], [h / r.height]])
        renderer = self.cheap_renderer if path == "brownout" else self.renderer
        try:
            rgb, _ = renderer.render(r.T_world_camera_optical, k, w, h)
        except RendererError as err:
            return ItemError(str(err))
        return enlarge(rgb, r.width, r.height) if (w, h) != (r.width, r.height) else rgb

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


def decimate(model: Any, keep: float, seed: int = 0) -> Any:
    """A ``gs_render.GaussianModel`` with a share ``keep`` of ``model``'s Gaussians.

    A seeded uniform random subset (uniform thinning keeps every surface sampled; keeping the
    "largest" splats would, on a map of equal splats, keep one region only), with the two largest
    axes of each kept splat widened by keep^(-1/2) so that the fewer splats still cover the
    surfaces (each now stands for 1 / keep of the area). Deterministic for a seed.
    """
    import torch

    from gs_render.model import GaussianModel

    n = len(model)
    k = max(1, int(np.ceil(keep * n)))
    generator = torch.Generator().manual_seed(seed)
    idx = torch.sort(torch.randperm(n, generator=generator)[:k]).values.to(model.means.device)
    scales = model.scales[idx]
    widen = torch.ones_like(scales)
    widen.scatter_(1, torch.argsort(scales, dim=1)[:, 1:], float(keep) ** -0.5)
    return GaussianModel(
        model.means[idx].clone(),
        model.quats[idx].clone(),
        scales * widen,
        model.opacities[idx].clone(),
        model.colors[idx].clone(),
    )
