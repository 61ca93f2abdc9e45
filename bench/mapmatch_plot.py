"""The figure of ``robomr bench mapmatch --plot PNG``: one sparse trip on the Helsinki network,
its fixes coloured by their region's GNSS sigma, the true route with its detours, and the
LNSP and HMM matches."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mapmatch import HmmMatcher, LnspMatcher
from mapmatch.metrics import route_score


def _pick(net, samples, lnsp_res, hmm_res) -> int:
    """The trip where LNSP gains most over the HMM, preferring one with a detour kept."""
    best, best_gain = 0, -np.inf
    for k, ((_, truth), a, b) in enumerate(zip(samples, lnsp_res, hmm_res, strict=True)):
        idx = lambda r: np.array([net.edge_index[int(e)] for e in r.cpath], dtype=np.int64)  # noqa: E731
        gain = route_score(truth, idx(b), net.edge_len).mismatch
        gain -= route_score(truth, idx(a), net.edge_len).mismatch
        if len(truth) > 8 and gain > best_gain:
            best, best_gain = k, gain
    return best


def plot_example(path: Path, net, ubodt, unit, samples, hmm_params: dict) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection

    trajs = [t for t, _ in samples]
    lnsp_res = LnspMatcher(net, ubodt, unit.led).match_many(trajs)
    hmm_res = HmmMatcher(net, ubodt, **hmm_params).match_many(trajs)
    k = _pick(net, samples, lnsp_res, hmm_res)
    traj, truth = samples[k]
    fig, ax = plt.subplots(figsize=(9, 8))
    ax.add_collection(
        LineCollection([net.edge_coords(e) for e in range(net.num_edges)], colors="0.82", lw=1)
    )
    true_lines = [net.edge_coords(e) for e in truth]
    ax.add_collection(LineCollection(true_lines, colors="tab:green", lw=7, alpha=0.35))
    for res, color, label, style in (
        (hmm_res[k], "tab:orange", "HMM (global sigma)", "--"),
        (lnsp_res[k], "tab:blue", "LNSP", "-"),
    ):
        for g in res.mgeom:
            ax.plot(g[:, 0], g[:, 1], style, color=color, lw=2, label=label)
            label = None
    sig = unit.noise.sigma_at(traj.xy)
    sc = ax.scatter(traj.xy[:, 0], traj.xy[:, 1], c=sig, cmap="plasma", s=45, zorder=5,
                    edgecolors="k", vmin=5, vmax=50)  # fmt: skip
    out = np.nonzero(lnsp_res[k].confidence == 0)[0]
    if len(out):
        ax.scatter(traj.xy[out, 0], traj.xy[out, 1], s=220, facecolors="none",
                   edgecolors="red", lw=2, zorder=6, label="fix LNSP judged noise")  # fmt: skip
    for i, (x, y) in enumerate(traj.xy):
        ax.annotate(str(i), (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.plot([], [], color="tab:green", lw=7, alpha=0.35, label="true route")
    fig.colorbar(sc, ax=ax, label="GNSS sigma of the fix's region (m)")
    idx = lambda r: np.array([net.edge_index[int(e)] for e in r.cpath], dtype=np.int64)  # noqa: E731
    m_l = route_score(truth, idx(lnsp_res[k]), net.edge_len).mismatch
    m_h = route_score(truth, idx(hmm_res[k]), net.edge_len).mismatch
    dt = float(np.median(np.diff(traj.t_s)))
    ax.set_title(
        f"Helsinki, one fix every {dt:.0f} s: route mismatch LNSP {m_l:.2f}, HMM {m_h:.2f}"
    )
    lo, hi = traj.xy.min(axis=0) - 150, traj.xy.max(axis=0) + 150
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_aspect("equal")
    ax.set_xlabel("UTM 35N easting (m)")
    ax.set_ylabel("northing (m)")
    ax.legend(loc="best", fontsize=9)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"figure {path}: trip {k} of helsinki seed {unit.seed}, LNSP {m_l:.2f} vs HMM {m_h:.2f}"
