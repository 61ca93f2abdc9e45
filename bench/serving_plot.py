"""SLO attainment and goodput vs offered load per policy, from ``robomr bench serving --json``.

``python -m bench.serving_plot SERVING.json OUT.png [TIMELINE.png]`` (``robomr bench serving
--plot OUT.png --brownout-plot TIMELINE.png`` draws the same at the end of a run);
:func:`plot_timeline` draws the brownout section's burst timeline.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

STYLE = {
    "bucket": ("tab:red", "-"),
    "bucket-noadmit": ("tab:red", ":"),
    "static": ("tab:blue", "-"),
    "static-perload": ("tab:blue", ":"),
    "fifo": ("tab:green", "-"),
    "none": ("tab:gray", "-"),
}


def plot_timeline(timeline: dict[str, Any], out: Path, seconds: float = 60.0) -> Path:
    """Three rows over the first ``seconds`` of one run: arrivals per second; SLO violations
    per second for each configuration; tau (the paper's dial; the slack law's share of full-path
    admissions per period) with the cheap answers per second shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    edges = np.asarray(timeline["edges_s"])
    keep = edges[:-1] < seconds
    mid = (edges[:-1] + edges[1:])[keep] / 2
    fig, axes = plt.subplots(3, 1, figsize=(9, 7), sharex=True)
    axes[0].step(mid, np.asarray(timeline["arrivals_hz"])[keep], where="mid", color="k")
    axes[0].set_ylabel("arrivals / s")
    axes[0].set_title(
        f"{timeline['model']}: bursty arrivals, SLO {timeline['slo_s'] * 1e3:.0f} ms (seed 0)"
    )
    colors = ("k", "tab:blue", "tab:red")
    for color, (label, run) in zip(colors, timeline["runs"].items(), strict=False):
        share = f"{label}: {run['violations']:.0%} of requests late"
        viol = np.asarray(run["violations_hz"])[keep]
        off = label == "brownout off"  # drawn wide and pale: the paper's law lies almost on it
        width, alpha = (4.0, 0.45) if off else (1.5, 1.0)
        axes[1].step(mid, viol, where="mid", color=color, label=share, lw=width, alpha=alpha)
        if run["tau"] and label != "brownout off":
            t, v = np.asarray(run["tau"]).T
            t, v = np.append(t, seconds), np.append(v, v[-1])
            axes[2].step(t, v, where="post", color=color, label=label.split(" (")[0])
            cheap = np.asarray(run["cheap_hz"])[keep]
            peak = max(float(np.max(timeline["arrivals_hz"])), 1.0)
            axes[2].fill_between(mid, 0, cheap / peak, step="mid", color=color, alpha=0.15)
    axes[1].set_ylabel("SLO violations / s")
    axes[1].legend(fontsize=7, loc="upper right")
    axes[2].set_ylabel("tau (shaded: cheap answers,\nshare of peak arrivals)")
    axes[2].set_ylim(-0.05, 1.05)
    axes[2].legend(fontsize=7, loc="lower right")
    axes[2].set_xlabel("time (s)")
    axes[2].set_xlim(0, seconds)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot(figures: dict[str, Any], out: Path) -> Path:
    """Draws one row per model, columns attainment per pattern and goodput per pattern."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(figures["slo_attainment"])
    patterns = list(figures["slo_attainment"][models[0]])
    fig, axes = plt.subplots(
        2 * len(models),
        len(patterns),
        figsize=(4 * len(patterns), 5.2 * len(models)),
        squeeze=False,
    )
    for m, model in enumerate(models):
        for c, pattern in enumerate(patterns):
            for row, key, label in (
                (2 * m, "slo_attainment", "SLO attainment"),
                (2 * m + 1, "goodput", "goodput at SLO (req/s)"),
            ):
                ax = axes[row][c]
                for policy, (color, dash) in STYLE.items():
                    series = figures[key][model][pattern].get(policy)
                    if series:
                        loads = [float(k) for k in series]
                        ax.plot(
                            loads,
                            list(series.values()),
                            dash,
                            color=color,
                            marker="o",
                            ms=3,
                            label=policy,
                        )
                if key == "slo_attainment":
                    ax.axhline(0.8, color="k", lw=0.5, ls="--")
                    ax.set_ylim(0, 1.02)
                ax.set_title(f"{model}, {pattern}", fontsize=9)
                ax.set_xlabel("offered load (x capacity)", fontsize=8)
                ax.set_ylabel(label, fontsize=8)
                ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) not in (2, 3):
        print(
            "usage: python -m bench.serving_plot SERVING.json OUT.png [TIMELINE.png]",
            file=sys.stderr,
        )
        return 2
    figures = json.loads(Path(args[0]).read_text())
    if figures.get("goodput"):
        plot(figures, Path(args[1]))
    if len(args) == 3 and "brownout_timeline" in figures:
        plot_timeline(figures["brownout_timeline"], Path(args[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
