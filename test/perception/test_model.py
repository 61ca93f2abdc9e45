"""The network on CPU: shapes, finite outputs, eval mode, backward, sparse vs dense plan."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import spconv.pytorch as spconv
import spconv.pytorch.ops as spconv_ops
import torch
import torch.nn.functional as F
from spconv.pytorch.cppcore import torch_tensor_to_tv

from perception.backbone import output_shape, scatter_to_grid
from perception.config import (
    CLASSES,
    ConfigError,
    DetectorConfig,
    FrameConfig,
    ModelConfig,
    VoxelConfig,
)
from perception.model import REGRESSION_CHANNELS, Detector
from perception.voxelize import collate, voxelize


def random_batch(config: DetectorConfig, batch: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    r = config.voxel.point_range_m
    clouds = [rng.uniform(r[:3], r[3:], (2000, 3)).astype(np.float32) for _ in range(batch)]
    feats, coords = collate([voxelize(c, config.voxel) for c in clouds])
    return torch.from_numpy(feats), torch.from_numpy(coords)


@pytest.mark.parametrize("backbone", ["sparse", "dense"])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_forward_shapes_and_finite_outputs(small_config, backbone, mode):
    config = replace(small_config, model=replace(small_config.model, backbone=backbone))
    torch.manual_seed(0)
    model = Detector(config).train(mode == "train")
    feats, coords = random_batch(config, batch=2)
    with torch.no_grad():
        out = model(feats, coords, 2)
    h, w = config.bev_shape
    assert out.heatmap.shape == (2, len(CLASSES), h, w)
    assert out.regression.shape == (2, len(REGRESSION_CHANNELS), h, w)
    assert torch.isfinite(out.heatmap).all() and torch.isfinite(out.regression).all()


def test_backward_reaches_the_sparse_layers_on_cpu(small_config):
    torch.manual_seed(0)
    model = Detector(small_config).train()
    feats, coords = random_batch(small_config, batch=1)
    out = model(feats, coords, 1)
    (out.heatmap.sum() + out.regression.sum()).backward()
    first_conv = model.backbone.net[0].weight
    assert first_conv.grad is not None and torch.isfinite(first_conv.grad).all()
    assert first_conv.grad.abs().sum() > 0


@pytest.mark.parametrize("threads", [1, 2])
def test_sparse_convolution_matches_a_dense_reference_on_any_thread_count(threads):
    """Guards perception.spconv_compat: spconv's own CPU scatter-add races with > 1 thread.

    A race shows up by chance: without the fix one run here catches it about one time in
    three, so the convolution runs 4 times (forward and backward; about 80 % detection). The
    replacement itself is checked exactly by the next test.
    """
    rng = np.random.default_rng(threads)
    shape = (9, 64, 64)  # (Z, Y, X)
    # Dense slabs (like ground and walls): every kernel offset pairs thousands of voxels.
    cells = np.argwhere(np.ones((3, 64, 64), dtype=bool))  # [N, 3] (z, y, x), Fortran-ordered
    coords = np.zeros((len(cells), 4), dtype=np.int32)  # C-ordered: spconv ignores strides
    coords[:, 1:] = cells + np.array([3, 0, 0])
    coords = torch.from_numpy(coords)
    feats = torch.from_numpy(rng.normal(size=(len(cells), 16)).astype(np.float32))
    torch.manual_seed(0)
    # 64 output channels: the race window of spconv's scatter loop grows with the row length.
    conv = spconv.SubMConv3d(16, 64, 3, bias=False, indice_key="k")
    dense_w = conv.weight.detach().clone().permute(0, 4, 1, 2, 3).requires_grad_()  # KRSC->OIDHW
    idx = coords.long()
    ref = F.conv3d(scatter_to_grid(feats, coords, 1, shape), dense_w, padding=1)
    ref = ref[idx[:, 0], :, idx[:, 1], idx[:, 2], idx[:, 3]]
    weight = torch.linspace(-1, 1, ref.numel()).reshape(ref.shape)
    (ref * weight).sum().backward()
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for _ in range(4):
            conv.weight.grad = None
            out = conv(spconv.SparseConvTensor(feats, coords, list(shape), 1))
            (out.features * weight).sum().backward()
            # float32 sums of 27 x 16 products of O(0.1) values: ~1e-6; the race errs by O(1).
            torch.testing.assert_close(out.features, ref, atol=1e-4, rtol=0)
            torch.testing.assert_close(  # sums over 12k voxels: ~1e-3 rounding
                conv.weight.grad.permute(0, 4, 1, 2, 3), dense_w.grad, atol=1e-2, rtol=1e-4
            )
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("threads", [1, 2])  # spconv's own loop on 1, index_add_ on more
def test_thread_safe_scatter_add_matches_numpy(threads):
    rng = np.random.default_rng(0)
    out = rng.normal(size=(50, 7)).astype(np.float32)
    source = rng.normal(size=(300, 7)).astype(np.float32)  # spconv's buffer: rows past n unused
    rows = rng.integers(0, 50, 200).astype(np.int32)  # repeated rows must all add up
    expected = out.copy()
    np.add.at(expected, rows, source[:200])
    target = torch.from_numpy(out)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        spconv_ops.SpconvOps.scatter_add_cpu(
            torch_tensor_to_tv(target),
            torch_tensor_to_tv(torch.from_numpy(source)),
            torch_tensor_to_tv(torch.from_numpy(rows)),
        )
    finally:
        torch.set_num_threads(before)
    np.testing.assert_allclose(target.numpy(), expected, rtol=0, atol=1e-5)  # float32 sums


def test_backbone_accepts_fortran_ordered_coordinates(small_config):
    torch.manual_seed(0)
    model = Detector(small_config).eval()
    feats, coords = random_batch(small_config, batch=1)
    fortran = torch.from_numpy(np.asfortranarray(coords.numpy()))  # same values, strides (1, V)
    with torch.no_grad():
        a, b = model.backbone(feats, coords, 1), model.backbone(feats, fortran, 1)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)  # same rulebook: float rounding only


def test_empty_voxel_set_gives_maps_without_running_spconv(small_config):
    model = Detector(small_config).eval()
    with torch.no_grad():
        out = model(torch.zeros((0, 3)), torch.zeros((0, 4), dtype=torch.int32), 1)
    assert out.heatmap.shape[0] == 1 and torch.isfinite(out.heatmap).all()


def test_default_model_is_small_and_keeps_the_documented_shapes():
    config = DetectorConfig()
    model = Detector(config)
    size_mb = sum(p.numel() for p in model.parameters()) * 4 / 2**20
    assert size_mb < 5.0  # "a few MB of weights at most"
    assert output_shape(config) == (32, 3, 100, 100)  # docs/perception.md
    assert config.bev_shape == (100, 100) and config.bev_cell_m == (0.8, 0.8)


@pytest.mark.parametrize(
    ("section", "kwargs"),
    [
        ("voxel", {"voxel_size_m": (0.3, 0.3, 0.2)}),  # does not divide 80 m
        ("voxel", {"voxel_size_m": (0.2, 0.2, -0.2)}),
        ("voxel", {"point_range_m": (-40.0, -40.0, -3.0, 40.0, 40.0, -1.4)}),  # 8 z cells
        ("frame", {"default_sensor_height_m": -1.0}),
        ("frame", {"min_range_m": 20.0}),
        ("voxel", {"point_range_m": (-40.0, -40.0, -3.0, 40.4, 40.0, 2.0)}),  # 402 x cells
        ("voxel", {"max_points_per_voxel": 0}),
        ("model", {"backbone": "pillars"}),
        ("model", {"backbone_channels": (16, 0, 32)}),
    ],
)
def test_config_rejects_out_of_bounds_values(section, kwargs):
    cls = {"voxel": VoxelConfig, "model": ModelConfig, "frame": FrameConfig}[section]
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        cls(**kwargs)


def test_config_rejects_other_class_lists():
    with pytest.raises(ConfigError, match="classes"):
        DetectorConfig(classes=("car", "pedestrian"))
