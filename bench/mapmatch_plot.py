"""The figure of ``robomr bench mapmatch --plot PNG``: one sparse trip on the Helsinki network,
its fixes coloured by their region's GNSS sigma, the true route with its deliberate detour,
and the LNSP and HMM matches."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mapmatch import HmmMatcher, LnspMatcher
from mapmatch.metrics import route_score


def _indices(net, res) -> np.ndarray:
    return np.array([net.edge_index[int(e)] for e in res.cpath], dtype=np.int64)


def _pick(net, unit, samples, lnsp_res, hmm_res) -> int:
    """The trip (with a detour and >= 6 fixes) where LNSP gains most over the HMM."""
    best, best_gain = 0, -np.inf
    for k, ((traj, truth), a, b) in enumerate(zip(samples, lnsp_res, hmm_res, strict=True)):
        detour = set(unit.drives[traj.traj_id].edges[unit.detours[traj.traj_id]].tolist())
        if len(traj.xy) < 6 or not detour & set(truth.tolist()):
            continue
        gain = route_score(truth, _indices(net, b), net.edge_len).mismatch
        gain -= route_score(truth, _indices(net, a), net.edge_len).mismatch
        if gain > best_gain:
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
    k = _pick(net, unit, samples, lnsp_res, hmm_res)
    traj, truth = samples[k]
    drive = unit.drives[traj.traj_id]
    detour = set(drive.edges[unit.detours[traj.traj_id]].tolist()) & set(truth.tolist())
    o = traj.xy.min(axis=0) - 150.0  # plot in metres from the trip's corner
    shift = lambda g: g - o  # noqa: E731
    fig, ax = plt.subplots(figsize=(9, 8))
    roads = [shift(net.edge_coords(e)) for e in range(net.num_edges)]
    ax.add_collection(LineCollection(roads, colors="0.85", lw=1))
    on = [shift(net.edge_coords(e)) for e in truth if e not in detour]
    off = [shift(net.edge_coords(e)) for e in truth if e in detour]
    ax.add_collection(LineCollection(on, colors="tab:green", lw=9, alpha=0.3))
    ax.add_collection(LineCollection(off, colors="tab:purple", lw=9, alpha=0.35))
    for res, color, label, lw, style in (
        (hmm_res[k], "tab:orange", "HMM, one global sigma", 4.5, "-"),
        (lnsp_res[k], "tab:blue", "LNSP", 1.8, "-"),
    ):
        for g in res.mgeom:
            g = shift(g)
            ax.plot(g[:, 0], g[:, 1], style, color=color, lw=lw, label=label, alpha=0.9)
            label = None
    xy = shift(traj.xy)
    sc = ax.scatter(xy[:, 0], xy[:, 1], c=unit.noise.sigma_at(traj.xy), cmap="plasma", s=50,
                    zorder=5, edgecolors="k", vmin=5, vmax=50)  # fmt: skip
    noise = np.nonzero(lnsp_res[k].confidence == 0)[0]
    if len(noise):
        ax.scatter(xy[noise, 0], xy[noise, 1], s=260, facecolors="none", edgecolors="red",
                   lw=2, zorder=6, label="fix LNSP judged noise")  # fmt: skip
    for i, (x, y) in enumerate(xy):
        ax.annotate(str(i), (x, y), textcoords="offset points", xytext=(6, 6), fontsize=8)
    ax.plot([], [], color="tab:green", lw=9, alpha=0.3, label="true route")
    ax.plot([], [], color="tab:purple", lw=9, alpha=0.35, label="its deliberate detours")
    fig.colorbar(sc, ax=ax, shrink=0.8, label="GNSS sigma of the fix's region (m)")
    m_l = route_score(truth, _indices(net, lnsp_res[k]), net.edge_len).mismatch
    m_h = route_score(truth, _indices(net, hmm_res[k]), net.edge_len).mismatch
    dt = float(np.median(np.diff(traj.t_s)))
    ax.set_title(
        f"Helsinki, one fix every {dt:.0f} s: route mismatch LNSP {m_l:.2f}, HMM {m_h:.2f}"
    )
    hi = xy.max(axis=0) + 150.0
    ax.set_xlim(0, hi[0])
    ax.set_ylim(0, hi[1])
    ax.set_aspect("equal")
    ax.set_xlabel("east (m)")
    ax.set_ylabel("north (m)")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return (
        f"figure {path}: trip {traj.traj_id} of helsinki seed {unit.seed} at {dt:.0f} s, "
        f"mismatch LNSP {m_l:.2f} vs HMM {m_h:.2f}"
    )
