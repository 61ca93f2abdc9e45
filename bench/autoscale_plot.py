"""Replicas and load over time for each policy on each trace (``robomr bench autoscale
--plot``): one panel per trace, the arrival rate (as offered load in replicas) shaded, each
policy's replica count as a step line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def plot(timelines: dict[str, dict[str, Any]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(timelines), 1, figsize=(11, 2.8 * len(timelines)), squeeze=False)
    for ax, (trace, runs) in zip(axes[:, 0], timelines.items(), strict=True):
        first = next(iter(runs.values()))
        t = np.array([x[0] for x in first.timeline])
        rate = np.array([x[4] for x in first.timeline])
        ax2 = ax.twinx()
        ax2.fill_between(t / 60, rate, color="0.85", step="post", label="arrivals/s")
        ax2.set_ylabel("arrivals / s")
        ax.set_zorder(ax2.get_zorder() + 1)
        ax.patch.set_visible(False)
        for policy, run in runs.items():
            tt = np.array([x[0] for x in run.timeline])
            ax.step(tt / 60, [x[2] for x in run.timeline], where="post", label=policy, lw=1.1)
        ax.set_title(trace)
        ax.set_ylabel("replicas")
        ax.legend(loc="upper left", fontsize=7, ncol=3)
    axes[-1, 0].set_xlabel("minutes")
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
