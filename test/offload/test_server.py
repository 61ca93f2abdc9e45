"""The service end to end on loopback: probes, metrics, binary bodies, auth, 400/401/413/429,
answers equal to the local batch functions, and graceful shutdown."""

from __future__ import annotations

import re
import threading
import time

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offload.serving.auth import AuthError, check_auth_setup, load_token
from offload.serving.config import ServeConfig
from offload.serving.server import ReplicaThread
from offload.serving.wire import CONTENT_TYPE, WireLimits, decode, encode

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": CONTENT_TYPE}


@pytest.fixture(scope="module")
def service(small_detector, small_renderer):
    config = ServeConfig(models=("detector", "gs_render"), limits=WireLimits(max_body_bytes=2**20))
    models = {"detector": small_detector, "gs_render": small_renderer}
    with ReplicaThread(config, TOKEN, models) as replica:
        replica.wait_ready()
        with httpx.Client(base_url=replica.url, timeout=30.0) as http:
            yield http


def _detect(http, points, **header):
    # a generous default budget: a loaded test machine must not turn these into 429s
    header.setdefault("deadline_ms", 30_000)
    return http.post("/v1/detect", content=encode(header, {"points": points}), headers=AUTH)


def test_probes_answer_and_models_are_listed(service) -> None:
    assert service.get("/healthz").json() == {"status": "ok"}
    ready = service.get("/readyz")
    assert ready.status_code == 200 and ready.json()["models"] == {
        "detector": True,
        "gs_render": True,
    }
    listed = {m["name"]: m for m in service.get("/v1/models").json()["models"]}
    assert listed["detector"]["unit"] == "points" and listed["gs_render"]["route"] == "/v1/render"


def test_detect_answers_what_the_local_batch_function_gives(
    service, small_detector, make_cloud
) -> None:
    from perception.detect import detect

    points = make_cloud(3000, seed=1)
    resp = _detect(service, points)
    assert resp.status_code == 200 and resp.headers["content-type"] == CONTENT_TYPE
    msg = decode(resp.content)
    (local,) = detect(small_detector.model, [points])
    # one cloud, one thread, the same weights: the same floats
    np.testing.assert_array_equal(msg.arrays["boxes"], local.boxes)
    np.testing.assert_array_equal(msg.arrays["scores"], local.scores)
    assert msg.header["path"] == "full" and msg.header["batch_size"] == 1


def test_render_answers_the_local_render(service, small_renderer) -> None:
    from geometry.transforms import invert_transform
    from gs_render.synthetic import street_camera

    k, viewmat = street_camera(64, 48)
    pose = invert_transform(viewmat)
    body = encode(
        {"width": 64, "height": 48, "deadline_ms": 30_000}, {"T_world_camera_optical": pose, "K": k}
    )
    resp = service.post("/v1/render", content=body, headers=AUTH)
    assert resp.status_code == 200
    image = decode(resp.content).arrays["image"]
    local, _ = small_renderer.renderer.render(pose, k, 64, 48)
    np.testing.assert_array_equal(image, local)


def test_metrics_expose_queues_batches_latency_tau_and_rejections(service, make_cloud) -> None:
    assert _detect(service, make_cloud(500)).status_code == 200
    assert _detect(service, make_cloud(500), deadline_ms=0.001).status_code == 429
    text = service.get("/metrics").text
    for family in (
        'robomr_serve_queue_length{bucket="full:',
        'robomr_serve_batch_size_bucket{le="1.0",model="detector"}',
        'robomr_serve_request_latency_seconds_bucket{le="0.5",model="detector",path="full"}',
        'robomr_serve_rejected_requests_total{model="detector",reason="deadline"}',
        "robomr_serve_ready 1.0",
    ):
        assert family in text, family
    # tau is 1 on a quiet machine; under heavy load the law may already have lowered it
    tau = re.search(r'^robomr_serve_brownout_tau\{model="detector"\} (\S+)$', text, re.M)
    assert tau and 0.0 <= float(tau.group(1)) <= 1.0


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token-0123456789"},
        {"Authorization": f"Basic {TOKEN}"},
    ],
)
def test_missing_or_wrong_token_answers_401(service, make_cloud, headers) -> None:
    resp = service.post(
        "/v1/detect", content=encode({}, {"points": make_cloud(10)}), headers=headers
    )
    assert resp.status_code == 401 and resp.headers["www-authenticate"] == "Bearer"
    assert resp.json()["error"]["reason"] == "unauthorized"


@pytest.mark.parametrize(
    ("route", "header", "arrays", "fragment"),
    [
        ("/v1/detect", {}, {"points": np.zeros((5, 2), np.float32)}, "at least 3"),
        ("/v1/detect", {}, {"points": np.zeros((5, 3), np.float64)}, "dtype <f4"),
        ("/v1/detect", {"deadline_ms": -5}, {"points": np.zeros((5, 3), np.float32)}, "deadline"),
        ("/v1/detect", {}, {}, "missing"),
        ("/v1/render", {"width": 0, "height": 4}, {}, "width=0"),
        (
            "/v1/render",
            {"width": 8, "height": 6},
            {"T_world_camera_optical": np.full((4, 4), 2.0), "K": np.eye(3)},
            "rigid",
        ),
    ],
)
def test_bad_input_answers_400_naming_the_problem(service, route, header, arrays, fragment) -> None:
    resp = service.post(route, content=encode(header, arrays), headers=AUTH)
    assert resp.status_code == 400, resp.text
    assert fragment in resp.json()["error"]["message"]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.one_of(st.binary(max_size=200), st.binary(max_size=40).map(lambda b: b"RMR1" + b)))
def test_malformed_bodies_answer_400_never_500(service, body: bytes) -> None:
    resp = service.post("/v1/detect", content=body, headers=AUTH)
    assert resp.status_code in (400, 413), resp.text


@pytest.mark.parametrize(
    ("points", "reason"),
    [
        (np.zeros((90_000, 3), np.float32), "too_large"),  # 1.08 MB body > the 1 MiB limit
        (np.zeros((25_000, 3), np.float32), "too_large"),  # 25k points > max_points 20k
    ],
)
def test_oversized_requests_answer_413(service, points, reason) -> None:
    resp = _detect(service, points)
    assert resp.status_code == 413 and resp.json()["error"]["reason"] == reason


def test_deadline_that_cannot_be_met_answers_429_with_retry_after(service, make_cloud) -> None:
    resp = _detect(service, make_cloud(100), deadline_ms=0.01)
    assert resp.status_code == 429
    assert int(resp.headers["retry-after"]) >= 1
    assert resp.json()["error"]["reason"] == "deadline"


def test_full_queue_answers_429_instead_of_queueing(small_detector, make_cloud) -> None:
    config = ServeConfig(models=("detector",), policy="none", max_queued=1, brownout=False)
    codes: list[int] = []
    with ReplicaThread(config, TOKEN, {"detector": small_detector}) as replica:
        replica.wait_ready()
        body = encode({"deadline_ms": 30_000}, {"points": make_cloud(15_000)})
        barrier = threading.Barrier(8)

        def send() -> None:
            barrier.wait()
            with httpx.Client(timeout=60.0) as http:
                codes.append(
                    http.post(replica.url + "/v1/detect", content=body, headers=AUTH).status_code
                )

        threads = [threading.Thread(target=send) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    # one runs, one waits, the rest were refused at once rather than queued
    assert codes.count(200) >= 2 and codes.count(429) >= 1 and set(codes) <= {200, 429}


def test_graceful_shutdown_finishes_queued_requests(small_renderer) -> None:
    from geometry.transforms import invert_transform
    from gs_render.synthetic import street_camera

    config = ServeConfig(models=("gs_render",), policy="none", brownout=False)
    k, viewmat = street_camera(320, 240)
    body = encode(
        {"width": 320, "height": 240, "deadline_ms": 60_000},
        {"T_world_camera_optical": invert_transform(viewmat), "K": k},
    )
    codes: list[int] = []
    replica = ReplicaThread(config, TOKEN, {"gs_render": small_renderer}).__enter__()
    replica.wait_ready()

    def send() -> None:
        with httpx.Client(timeout=60.0) as http:
            codes.append(
                http.post(replica.url + "/v1/render", content=body, headers=AUTH).status_code
            )

    threads = [threading.Thread(target=send) for _ in range(3)]
    for t in threads:
        t.start()
    stats = replica.replica.workers["gs_render"].scheduler.stats
    while stats.admitted < 3:  # all three received: one running, two queued
        time.sleep(0.005)
    replica.stop()  # SIGTERM's path: stop listening, finish what was received
    for t in threads:
        t.join()
    assert codes == [200, 200, 200]
    with pytest.raises(httpx.ConnectError):
        httpx.get(replica.url + "/healthz", timeout=2.0)


@pytest.mark.parametrize(
    ("host", "token", "allow", "ok"),
    [
        ("127.0.0.1", None, True, True),
        ("::1", None, True, True),
        ("localhost", None, True, True),
        ("0.0.0.0", None, True, False),  # open service on every interface: refused
        ("10.0.0.5", None, True, False),
        ("127.0.0.1", None, False, False),  # no token must be asked for explicitly
        ("0.0.0.0", TOKEN, False, True),
    ],
)
def test_running_without_a_token_needs_loopback_and_an_explicit_flag(host, token, allow, ok):
    if ok:
        check_auth_setup(host, token, allow)
    else:
        with pytest.raises(AuthError):
            check_auth_setup(host, token, allow)


def test_token_comes_from_a_file_or_the_environment(tmp_path) -> None:
    path = tmp_path / "token"
    path.write_text(f"{TOKEN}\n")
    assert load_token(path, env={}) == TOKEN
    assert load_token(None, env={"ROBOMR_SERVICE_TOKEN": TOKEN}) == TOKEN
    assert load_token(None, env={}) is None
    path.write_text("short\n")
    with pytest.raises(AuthError, match="at least 16"):
        load_token(path, env={})
    with pytest.raises(AuthError, match="cannot read"):
        load_token(tmp_path / "missing", env={})


def test_serve_command_refuses_an_open_service(capsys) -> None:
    from robomr_nodes.cli.main import main

    assert main(["serve", "--no-auth", "--host", "0.0.0.0", "--port", "0"]) == 2
    assert "loopback" in capsys.readouterr().err


def test_accepted_connections_get_tcp_nodelay() -> None:
    """A response is written as headers then body; without TCP_NODELAY the body waits for the
    client's delayed ACK (40 ms per back-to-back request). asyncio sets it only on sockets
    whose proto is IPPROTO_TCP, which accepted sockets inherit from the listener."""
    import asyncio
    import socket

    from offload.serving.server import bind

    listener = bind("127.0.0.1", 0)
    assert listener.proto == socket.IPPROTO_TCP
    seen: list[int] = []

    async def main() -> None:
        def on_connect(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sock = writer.get_extra_info("socket")
            seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(on_connect, sock=listener)
        async with server:
            _, writer = await asyncio.open_connection(*listener.getsockname()[:2])
            for _ in range(100):
                if seen:
                    break
                await asyncio.sleep(0.01)
            writer.close()

    asyncio.run(main())
    assert seen == [1]


def test_served_detector_runs_the_precision_it_is_given(small_detector, make_cloud) -> None:
    import argparse

    from offload.serving.cli import add_arguments, config_from_args
    from offload.serving.model import ModelError
    from offload.serving.models.detector import DetectorModel
    from perception.detect import detect

    points = make_cloud(3000, seed=1)
    assert small_detector.precision == "float32"  # the default, as the lidar_detector node's
    served = DetectorModel(small_detector.model, 6.4, 20_000, precision="bfloat16")
    for path, net in (("full", served.model), ("brownout", served.short)):
        (got,) = served.run([points], path)
        (want,) = detect(net, [points], precision="bfloat16")
        (plain,) = detect(net, [points])
        np.testing.assert_array_equal(got.scores, want.scores)
        assert not np.array_equal(got.scores, plain.scores)  # it did not run float32
    with pytest.raises(ModelError, match="dense precision 'half'"):
        DetectorModel(small_detector.model, 6.4, 20_000, precision="half")  # type: ignore[arg-type]
    p = argparse.ArgumentParser()
    add_arguments(p)
    assert config_from_args(p.parse_args([])).model_options["detector"]["precision"] == "float32"
    args = p.parse_args(["--detector-precision", "auto"])
    assert config_from_args(args).model_options["detector"]["precision"] == "auto"
