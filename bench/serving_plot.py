"""SLO attainment and goodput vs offered load per policy, from ``robomr bench serving --json``.

``python -m bench.serving_plot SERVING.json OUT.png`` (``robomr bench serving --plot OUT.png``
draws the same at the end of a run).
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
    if len(args) != 2:
        print("usage: python -m bench.serving_plot SERVING.json OUT.png", file=sys.stderr)
        return 2
    plot(json.loads(Path(args[0]).read_text()), Path(args[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
