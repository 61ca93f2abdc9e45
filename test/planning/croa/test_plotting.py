"""plot_plans renders headless and draws one path per method."""

from __future__ import annotations

from pathlib import Path

from planning.croa.plotting import plot_plans
from planning.croa.scenes import Scene


def test_plot_plans_writes_a_png_with_every_method(
    planners, scenes: dict[int, Scene], tmp_path: Path
) -> None:
    scene = scenes[0]
    obs = scene.observation()
    results = {name: planners[name].plan(obs)[0] for name in ("stay", "straight")}
    out = tmp_path / "plans.png"
    fig = plot_plans(obs, results, title=scene.name, path=out)
    assert out.stat().st_size > 10_000  # a real 990 x 660 image, not an empty file
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert sum(label.startswith(("stay:", "straight:")) for label in labels) == 2
    assert len(ax.patches) >= len(obs.obstacles) + 1  # obstacles, target and footprints
