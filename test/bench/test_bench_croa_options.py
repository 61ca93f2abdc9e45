"""bench croa's options: the follower reaches the episodes' settings, and each CROA option
(exact acceptance, keep-better-start) gets its own episode cache without moving the default
runs' cache."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bench.bench_croa import _cache_dir, _planners, _settings, add_arguments, croa_options
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
    keep_args = _args(tmp_path, "--keep-better-start")
    keep = _cache_dir(keep_args, _settings(keep_args))
    assert default == again and len({default, exact, pursuit, keep}) == 4
    assert "exact_acceptance" not in (default / "settings.json").read_text()
    assert '"follower": "trajectory"' in (default / "settings.json").read_text()


def test_the_follower_and_field_options_reach_the_episode_settings(tmp_path: Path) -> None:
    assert _settings(_args(tmp_path)).follower == "trajectory"
    assert _settings(_args(tmp_path, "--follower", "pursuit")).follower == "pursuit"
    assert _settings(_args(tmp_path)).safety_field
    assert not _settings(_args(tmp_path, "--no-safety-field")).safety_field
    assert _settings(_args(tmp_path)).moving_field
    assert not _settings(_args(tmp_path, "--no-moving-field")).moving_field
    with pytest.raises(SystemExit):
        _args(tmp_path, "--follower", "teleport")


def test_the_croa_options_reach_croas_loop(tmp_path: Path) -> None:
    assert croa_options(_args(tmp_path)) == ()
    options = croa_options(_args(tmp_path, "--keep-better-start", "--exact-acceptance"))
    assert options == ("exact_acceptance", "keep_better_start")
    for name in options:
        croa = _planners((name,))["croa"]
        assert isinstance(croa, CroaPlanner) and getattr(croa.config.scp, name)
        assert not getattr(_planners()["croa"].config.scp, name)
