"""Property-based fuzzing of robomr_nodes' input parsers: PointCloud2 and Image messages with
random layouts, lengths and steps; bag metadata.yaml; launch and parameter YAML. Each either
returns a well-formed result or raises its own error class with a one-line message; any other
exception would reach the user as a traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from robomr_nodes.bag import BagError, BagRecorder, bag_info, read_bag, verify_bag
from robomr_nodes.convert.image import ENCODINGS, ImageError, image_to_array
from robomr_nodes.convert.pointcloud import CloudError, cloud_to_xyz
from robomr_nodes.launch_yaml import LaunchError, load_launch
from robomr_nodes.messages import header, new_message
from robomr_nodes.param_files import ParamFileError, load_param_file, overrides_for

FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,  # the same examples on every run; robomr bench reliability --seed explores
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["$(var x)", "$(env HOME)", "$(eval '1+')", "$(find-pkg-share robomr)"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def one_line(err: Exception) -> None:
    assert "\n" not in str(err).strip(), f"multi-line message: {err}"


@st.composite
def point_clouds(draw: st.DrawFn):
    fields = [
        new_message(
            "sensor_msgs/msg/PointField",
            name=draw(st.sampled_from(["x", "y", "z", "intensity", "ring", "", "x"])),
            offset=draw(st.integers(0, 64)),
            datatype=draw(st.integers(0, 10)),
            count=draw(st.integers(0, 5)),
        )
        for _ in range(draw(st.integers(0, 5)))
    ]
    step, width = draw(st.integers(0, 64)), draw(st.integers(0, 30))
    return new_message(
        "sensor_msgs/msg/PointCloud2",
        header=header(0, "lidar"),
        height=draw(st.integers(0, 4)),
        width=width,
        fields=fields,
        is_bigendian=draw(st.booleans()),
        point_step=step,
        row_step=draw(st.one_of(st.just(step * width), st.integers(0, 3000))),
        data=np.frombuffer(draw(st.binary(max_size=3000)), dtype=np.uint8),
        is_dense=True,
    )


@FUZZ
@given(msg=point_clouds())
def test_pointcloud2_of_any_layout_converts_or_raises_cloud_error(msg) -> None:
    try:
        xyz = cloud_to_xyz(msg)
    except CloudError as err:
        one_line(err)
        return
    assert xyz.dtype == np.float32 and xyz.shape == (msg.height * msg.width, 4)


@FUZZ
@given(
    encoding=st.sampled_from([*ENCODINGS, "yuv422", "", "8UC3"]),
    height=st.integers(0, 20),
    width=st.integers(0, 20),
    step=st.integers(0, 120),
    data=st.binary(max_size=3000),
    bigendian=st.integers(0, 1),
)
def test_image_of_any_shape_converts_or_raises_image_error(
    encoding, height, width, step, data, bigendian
) -> None:
    msg = new_message(
        "sensor_msgs/msg/Image",
        header=header(0, "camera"),
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=bigendian,
        step=step,
        data=np.frombuffer(data, dtype=np.uint8),
    )
    try:
        pixels = image_to_array(msg)
    except ImageError as err:
        one_line(err)
        return
    assert pixels.shape == (height, width, ENCODINGS[encoding][1])


@pytest.fixture(scope="module")
def small_bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bag") / "bag"
    with BagRecorder(path, custom_data={"robomr.graph": "[]"}) as rec:
        for i in range(3):
            rec.write("/s", "std_msgs/msg/String", 10 + i, new_message("std_msgs/msg/String"))
    return path


def _paths(node: object, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


@FUZZ
@given(data=st.data(), value=VALUES)
def test_any_edit_of_metadata_yaml_reads_or_raises_bag_error(
    small_bag: Path, tmp_path: Path, data: st.DataObject, value: object
) -> None:
    doc = yaml.safe_load((small_bag / "metadata.yaml").read_text())
    path = data.draw(st.sampled_from(_paths(doc)[1:]))
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    bag = tmp_path / "b"
    shutil.rmtree(bag, ignore_errors=True)
    shutil.copytree(small_bag, bag)
    (bag / "metadata.yaml").write_text(yaml.safe_dump(doc))
    try:
        verify_bag(bag)
        info = bag_info(bag)
        assert sum(1 for _ in read_bag(bag)) == info.message_count
    except BagError as err:
        one_line(err)


ENTRY_KINDS = st.sampled_from(
    ["arg", "let", "node", "include", "group", "push-ros-namespace", "executable", "timer"]
)
NODE_KEYS = st.sampled_from(
    [
        "pkg",
        "exec",
        "name",
        "namespace",
        "param",
        "remap",
        "if",
        "unless",
        "from",
        "value",
        "file",
        "children",
        "default",
        "cmd",
    ]
)


@FUZZ
@given(
    entries=st.lists(
        st.dictionaries(ENTRY_KINDS, st.dictionaries(NODE_KEYS, VALUES, max_size=5), max_size=2),
        max_size=4,
    )
)
def test_any_launch_yaml_loads_or_raises_launch_error(tmp_path: Path, entries) -> None:
    path = tmp_path / "l.launch.yaml"
    path.write_text(yaml.safe_dump({"launch": entries}))
    try:
        load_launch(path)
    except LaunchError as err:
        one_line(err)


@FUZZ
@given(
    doc=VALUES
    | st.dictionaries(
        st.text(max_size=10),
        st.dictionaries(st.sampled_from(["ros__parameters", "other"]), VALUES, max_size=2),
        max_size=3,
    )
)
def test_any_parameter_yaml_loads_or_raises_param_file_error(tmp_path: Path, doc) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(doc))
    try:
        load_param_file(path)
        overrides_for(path, "/robomr/synthetic_cloud")
    except ParamFileError as err:
        one_line(err)
