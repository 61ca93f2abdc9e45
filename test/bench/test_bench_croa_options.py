"""bench croa's options: the follower reaches the episodes' settings, and the exact-acceptance
option gets its own episode cache without moving the default runs' cache."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bench.bench_croa import _cache_dir, _planners, _settings, add_arguments
from perception.config import DEFAULT_MODEL_PATH
from planning.croa import CroaPlanner


def _args(tmp_path: Path, *extra: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(["--cache", str(tmp_path), *extra])


@pytest.mark.skipif(not DEFAULT_MODEL_PATH.is_file(), reason="the cache key hashes the model")
def test_exact_acceptance_has_its_own_cache_and_the_default_keeps_its_key(tmp_path: Path) -> None:
    default = _cache_dir(_args(tmp_path), _settings(_args(tmp_path)))
    again = _cache_dir(_args(tmp_path), _settings(_args(tmp_path)))
    exact_args = _args(tmp_path, "--exact-acceptance")
    exact = _cache_dir(exact_args, _settings(exact_args))
    pursuit_args = _args(tmp_path, "--follower", "pursuit")
    pursuit = _cache_dir(pursuit_args, _settings(pursuit_args))
    assert default == again and len({default, exact, pursuit}) == 3
    assert "exact_acceptance" not in (default / "settings.json").read_text()
    assert '"follower": "trajectory"' in (default / "settings.json").read_text()


def test_the_follower_option_reaches_the_episode_settings(tmp_path: Path) -> None:
    assert _settings(_args(tmp_path)).follower == "trajectory"
    assert _settings(_args(tmp_path, "--follower", "pursuit")).follower == "pursuit"
    with pytest.raises(SystemExit):
        _args(tmp_path, "--follower", "teleport")


def test_exact_acceptance_reaches_croas_loop() -> None:
    planners = _planners(True)
    croa = planners["croa"]
    assert isinstance(croa, CroaPlanner) and croa.config.scp.exact_acceptance
    assert not _planners(False)["croa"].config.scp.exact_acceptance
