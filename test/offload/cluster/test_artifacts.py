"""The three-level artifact cache: hits and misses at each level, invalidation, bad input,
a node-local Redis that is down. A real redis-server is started per test (unix socket in a
private temporary folder)."""

from __future__ import annotations

import shutil

import pytest

from offload.cluster.artifacts import ArtifactCache, ArtifactError, ArtifactStore, RedisServer

needs_redis = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="redis-server not installed (Debian redis-server)"
)


@pytest.fixture
def store(tmp_path):
    src = tmp_path / "weights.bin"
    src.write_bytes(b"w" * 10_000 + bytes(range(256)))
    return ArtifactStore.publish(tmp_path / "store", {"weights": src})


@pytest.fixture
def redis_url():
    with RedisServer(maxmemory_mb=16) as server:
        yield server.url


@needs_redis
def test_levels_fill_on_the_way_back(store, redis_url):
    first = ArtifactCache(store, redis_url)
    data = first.get("weights")
    assert first.last_level == "l3"
    assert first.get("weights") == data and first.last_level == "l1"
    # a new process on the same node: empty L1, the node-local copy answers
    second = ArtifactCache(store, redis_url)
    assert second.get("weights") == data and second.last_level == "l2"
    assert first.stats["l3"] == 1 and second.stats["l3"] == 0


@needs_redis
def test_a_new_deployment_is_never_served_stale(store, redis_url, tmp_path):
    cache = ArtifactCache(store, redis_url)
    old = cache.get("weights")
    new_src = tmp_path / "weights2.bin"
    new_src.write_bytes(b"new weights")
    ArtifactStore.publish(store.root, {"weights": new_src})
    assert cache.get("weights") == b"new weights" and cache.last_level == "l3"
    other = ArtifactCache(store, redis_url)
    assert other.get("weights") == b"new weights" and other.last_level == "l2"
    assert old != b"new weights"


@needs_redis
def test_invalidate_drops_l1_and_l2(store, redis_url):
    cache = ArtifactCache(store, redis_url)
    cache.get("weights")
    assert cache.invalidate("weights") == 1
    assert ArtifactCache(store, redis_url).get("weights") and cache.get("weights")
    assert cache.last_level == "l2"  # the other cache refilled L2 from the store


def test_without_l2_a_new_process_goes_to_the_store(store):
    a, b = ArtifactCache(store), ArtifactCache(store)
    a.get("weights")
    b.get("weights")
    assert (a.last_level, b.last_level) == ("l3", "l3")


def test_a_redis_that_is_down_degrades_to_the_store(store, tmp_path):
    cache = ArtifactCache(store, f"unix://{tmp_path}/nobody.sock")
    assert cache.get("weights") and cache.last_level == "l3"
    assert cache.stats["l2_errors"] >= 1


def test_corrupt_store_content_is_refused(store):
    ref = store.ref("weights")
    (store.root / ref.file).write_bytes(b"not xz at all")
    with pytest.raises(ArtifactError, match="cannot read"):
        ArtifactCache(store).get("weights")


def test_tampered_content_fails_the_hash(store, tmp_path):
    src = tmp_path / "plain.bin"
    src.write_bytes(b"original")
    s = ArtifactStore.publish(tmp_path / "plain", {"a": src}, compression="none")
    (s.root / s.ref("a").file).write_bytes(b"tampered")
    with pytest.raises(ArtifactError, match="sha256"):
        ArtifactCache(s).get("a")


@pytest.mark.parametrize("name", ["missing", ""])
def test_unknown_artifact_is_a_clear_error(store, name):
    with pytest.raises(ArtifactError, match="not in"):
        ArtifactCache(store).get(name)


def test_objects_are_decoded_once_per_content(store, tmp_path):
    cache = ArtifactCache(store)
    calls = []
    obj = cache.get_object("weights", lambda b: calls.append(1) or len(b))
    assert cache.get_object("weights", lambda b: calls.append(1) or len(b)) == obj
    assert len(calls) == 1
    path = cache.path("weights", tmp_path / "local")
    assert path.read_bytes() == cache.get("weights")
