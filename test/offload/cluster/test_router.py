"""The router: weighted least-outstanding choice, forwarding over real HTTP, failover, admin."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response

from offload.cluster.balance import BalanceError, Balancer
from offload.cluster.router import Router

TOKEN = "router-test-token-0123"


# -- the choice rule (pure) ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("outstanding", "weights", "healthy", "expected"),
    [
        ((0, 0), (1.0, 1.0), (True, True), "a"),  # tie: round-robin starts with a
        ((2, 0), (1.0, 1.0), (True, True), "b"),  # least outstanding
        ((0, 0), (1.0, 0.25), (True, True), "a"),  # (0+1)/1 < (0+1)/0.25
        ((1, 0), (1.0, 0.25), (True, True), "a"),  # 2/1 < 1/0.25 = 4: steered away from b
        ((4, 0), (1.0, 0.25), (True, True), "b"),  # 5/1 > 4: b takes the overflow
        ((0, 3), (1.0, 1.0), (False, True), "b"),  # unhealthy a skipped
        ((0, 3), (1.0, 1.0), (False, False), "a"),  # none healthy: panic, route to all
    ],
)
def test_the_least_weighted_outstanding_replica_is_chosen(
    outstanding: tuple, weights: tuple, healthy: tuple, expected: str
) -> None:
    b = Balancer()
    for name, n, w, h in zip("ab", outstanding, weights, healthy, strict=True):
        b.add(name, f"http://{name}")
        b.replicas[name].outstanding, b.replicas[name].weight, b.replicas[name].healthy = n, w, h
    chosen = b.pick()
    assert chosen is not None and chosen.name == expected
    assert chosen.outstanding == dict(zip("ab", outstanding, strict=True))[expected] + 1


def test_ties_go_round_robin_and_done_frees_the_slot() -> None:
    b = Balancer()
    for name in "abc":
        b.add(name, f"http://{name}")
    picks = []
    for _ in range(6):
        r = b.pick()
        assert r is not None
        picks.append(r.name)
        b.done(r, 0.01, 200)
    assert sorted(picks) == sorted("abcabc")
    snap = {r["name"]: r for r in b.snapshot()}
    assert all(r["outstanding"] == 0 and r["answered"] == 2 for r in snap.values())


@pytest.mark.parametrize("bad", [0.0, -1.0, 1.5])
def test_weights_outside_zero_one_are_refused(bad: float) -> None:
    b = Balancer()
    b.add("a", "http://a")
    with pytest.raises(BalanceError, match="weight"):
        b.set_weights({"a": bad})


# -- over HTTP -------------------------------------------------------------------------------------
class Backend:
    """A tiny real HTTP replica: counts requests, echoes the body, answers with ``status``."""

    def __init__(self, name: str, delay_s: float = 0.0, status: int = 200) -> None:
        self.name, self.delay_s, self.status = name, delay_s, status
        self.seen: list[dict[str, Any]] = []
        app = FastAPI()

        @app.get("/readyz")
        def readyz() -> dict:
            return {"ready": True}

        @app.post("/v1/detect")
        async def detect(request: Request) -> Response:
            body = await request.body()
            self.seen.append({"auth": request.headers.get("authorization"), "body": body})
            time.sleep(self.delay_s)
            headers = {"Retry-After": "2"} if self.status == 429 else {}
            return Response(
                body + self.name.encode(),
                status_code=self.status,
                media_type="application/x-robomr-arrays",
                headers=headers,
            )

        from offload.serving.server import bind, url_of

        sock = bind("127.0.0.1", 0)
        self.url = url_of(sock)
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, args=([sock],), daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(5.0)


class NoAdmin:
    def status(self, window_s: float = 5.0) -> dict:
        return {"corunners": [], "replicas": []}

    def request_down(self) -> None:
        self.down_asked = True


@pytest.fixture()
def pair() -> Iterator[tuple[Router, Backend, Backend]]:
    a, b = Backend("A"), Backend("B")
    bal = Balancer()
    bal.add("a", a.url)
    bal.add("b", b.url)
    router = Router(bal, NoAdmin(), TOKEN)  # type: ignore[arg-type]
    router.start()
    yield router, a, b
    router.stop()
    a.stop()
    b.stop()


def test_requests_are_forwarded_unchanged_with_the_token(pair) -> None:
    router, a, b = pair
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-robomr-arrays"}
    answers = [
        httpx.post(router.url + "/v1/detect", content=b"xyz", headers=auth) for _ in range(4)
    ]
    assert all(r.status_code == 200 for r in answers)
    assert {r.content for r in answers} == {b"xyzA", b"xyzB"}  # both replicas served
    assert all(s["auth"] == f"Bearer {TOKEN}" and s["body"] == b"xyz" for s in a.seen + b.seen)


def test_an_overloaded_answer_keeps_its_retry_after(pair) -> None:
    router, a, b = pair
    a.status = b.status = 429
    r = httpx.post(router.url + "/v1/detect", content=b"x")
    assert r.status_code == 429 and r.headers["retry-after"] == "2"


def test_a_dead_replica_is_skipped_and_marked_unhealthy(pair) -> None:
    router, a, _b = pair
    a.stop()
    answers = [httpx.post(router.url + "/v1/detect", content=b"x") for _ in range(4)]
    assert all(r.status_code == 200 and r.content == b"xB" for r in answers)
    assert {r["name"]: r["healthy"] for r in router.balancer.snapshot()} == {"a": False, "b": True}


def test_steering_weights_shift_traffic_to_the_heavier_replica(pair) -> None:
    """With b at weight 0.2 and a slow a (50 ms), b is chosen only when a has >= 5 requests
    in flight: with 4 concurrent senders, every request goes to a."""
    router, a, b = pair
    a.delay_s = 0.05
    r = httpx.put(
        router.url + "/cluster/weights",
        json={"b": 0.2},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert r.status_code == 200 and r.json()["weights"] == {"a": 1.0, "b": 0.2}

    def send() -> None:
        for _ in range(5):
            httpx.post(router.url + "/v1/detect", content=b"x", timeout=10)

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(a.seen) == 20 and len(b.seen) == 0


@pytest.mark.parametrize(
    ("method", "path", "headers", "code"),
    [
        ("GET", "/cluster/status", {}, 401),  # the admin API needs the token
        ("GET", "/cluster/status", {"Authorization": "Bearer wrong-token-000000"}, 401),
        ("GET", "/cluster/status", {"Authorization": f"Bearer {TOKEN}"}, 200),
        ("POST", "/cluster/nothing", {"Authorization": f"Bearer {TOKEN}"}, 400),
        ("GET", "/healthz", {}, 200),  # probes and metrics need none
        ("GET", "/readyz", {}, 200),
        ("GET", "/metrics", {}, 200),
    ],
)
def test_admin_routes_need_the_token_and_probes_do_not(
    pair, method: str, path: str, headers: dict, code: int
) -> None:
    router, _, _ = pair
    assert httpx.request(method, router.url + path, headers=headers).status_code == code


def test_metrics_export_the_routers_families(pair) -> None:
    router, _, _ = pair
    httpx.post(router.url + "/v1/detect", content=b"x")
    text = httpx.get(router.url + "/metrics").text
    for family in (
        "robomr_router_requests_total",
        "robomr_router_request_latency_seconds",
        "robomr_router_weight",
        "robomr_cluster_replicas",
        "robomr_router_outstanding",
    ):
        assert family in text
