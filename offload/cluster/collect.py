"""``robomr cluster collect``: a labelled CPI data set from the local cluster under seeded mixes.

The cluster serves an open-loop Poisson load through its router while best-effort co-runners
come and go. Each *run* (seed ``seed x 1000 + r``) is a sequence of ``phase_s`` phases; each
phase draws a new mix: 0..``max_corunners`` co-runners of random kinds (cpu, membw, cache, io),
cpus (one core, or any) and duty (0.3, 0.6, 1.0), sometimes a BE CPU cap or a paused co-runner,
the BE group at the least CPU weight (CPU QoS, 2 in 5 phases) or the LS group's,
and an offered load between ``load_frac`` of the measured capacity. The node agent runs without
mitigation and records, every interval and replica, the feature row and the measured CPI
(:mod:`offload.cluster.agent`), with the CPI of each probe burst.

Samples (:func:`to_arrays`): an interval whose measurement a mix change fell into (co-runners
started or stopped, cap or load changed while it was measured) is dropped: its label mixes two
co-locations that no feature row describes. With ``horizon`` 0 (the default, the figures'
task) a sample is the features of interval k (own, node and co-location metrics, all over k)
with the inflation of k-1 as history, and the label is the CPI inflation of interval k; with
``horizon`` 1 the features of k (history: the inflation of k) predict the inflation of k+1, the
same phase's next interval. The last-value baseline is the history value in both. The label is
the ``aggregate`` (the trimmed mean by default) of the interval's burst CPIs over the reference
(:func:`offload.cluster.probe.aggregate_cpi`); the latency label (horizon 1 only: at horizon 0
the features hold the same interval's P50) is the mean latency of the label's interval over the
quiet median (measured first).

Output (``--out DIR``): ``rows.jsonl`` (every interval), ``meta.json`` (settings, machine,
quiet latency). ``--train`` also fits the predictor on all but the held-out runs, prints
held-out accuracy against the baselines (:mod:`offload.cluster.predictor`) and saves the model
with its provenance (``--model-out``, default ``models/cpi_predictor.txt``).

Raises:
    CollectError: a bad setting, or a cluster that would not start.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from offload.cluster.cgroups import DEFAULT_CPU_SHARES
from offload.cluster.mitigation.qos import QosConfig

log = logging.getLogger(__name__)
KIND_NAMES = ("cpu", "membw", "cache", "io")
LABEL_DEFINITION = (
    "label = CPI inflation of an interval: trimmed mean (20% off each end) of its probe bursts' "
    "CPI / the node's reference CPI; features over the same interval (horizon 0), history = "
    "the interval before; intervals a mix change fell into dropped"
)
DUTIES = (0.3, 0.6, 1.0)


class CollectError(RuntimeError):
    """See the module docstring."""


@dataclass(frozen=True)
class CollectConfig:
    """Attributes:
    runs: runs (each its own seed), >= 1.
    run_s: length of a run (s), >= phase_s.
    phase_s: length of one mix (s), >= 2 x interval_s.
    seed: base seed.
    interval_s: agent interval (s).
    probe_bursts: probe bursts per interval.
    load_frac: offered load range as a share of the measured capacity, 0 < lo <= hi <= 1.5.
    max_corunners: most co-runners at once, 0..6.
    calibrate_s: quiet closed-loop time that gives the baseline latency (s).
    """

    runs: int = 8
    run_s: float = 40.0
    phase_s: float = 8.0
    seed: int = 0
    interval_s: float = 1.0
    probe_bursts: int = 10
    load_frac: tuple[float, float] = (0.15, 0.7)
    max_corunners: int = 3
    calibrate_s: float = 8.0

    def __post_init__(self) -> None:
        if self.runs < 1 or self.run_s < self.phase_s or self.phase_s < 2 * self.interval_s:
            raise CollectError("need runs >= 1, run_s >= phase_s >= 2 x interval_s")
        lo, hi = self.load_frac
        if not 0 < lo <= hi <= 1.5 or not 0 <= self.max_corunners <= 6:
            raise CollectError("load_frac must satisfy 0 < lo <= hi <= 1.5; max_corunners 0..6")


def mix(rng: np.random.Generator, cpus: list[int], config: CollectConfig) -> dict[str, Any]:
    """One phase's co-runners, cap, pause and load (see the module docstring)."""
    places = [[c] for c in cpus] + [[]]
    corunners = []
    for i in range(int(rng.integers(0, config.max_corunners + 1))):
        corunners.append(
            {
                "name": f"mix-{i}",
                "kind": str(rng.choice(KIND_NAMES)),
                "cpus": places[int(rng.integers(len(places)))],
                "duty": float(rng.choice(DUTIES)),
                "working_set_mib": None,
                "seed": int(rng.integers(1 << 30)),
            }
        )
    cap = float(rng.uniform(0.1, 0.75) * len(cpus)) if rng.random() < 0.35 else None
    # CPU QoS on (Kubernetes' BestEffort weight) or off
    shares = QosConfig().be_shares if rng.random() < 0.4 else DEFAULT_CPU_SHARES
    pause = int(rng.integers(len(corunners))) if corunners and rng.random() < 0.25 else None
    return {
        "corunners": corunners,
        "be_cap": cap,
        "be_shares": shares,
        "pause": pause,
        "load_frac": float(rng.uniform(*config.load_frac)),
    }


def collect(
    url: str, token: str, config: CollectConfig, progress: Callable[[str], None] | None = None
) -> tuple[list[dict], dict]:
    """Runs the collection against a running local cluster; returns (rows, meta)."""
    from offload.cluster.agent import Agent, AgentConfig
    from offload.cluster.api import ClusterApi
    from offload.cluster.load import PoissonLoad, closed_loop_latency, street_scan
    from offload.cluster.mitigation import MitigationConfig
    from offload.cluster.mitigation.interface import PauseCoRunner, SetBeLimit, SetBeWeight

    say = progress or (lambda _m: None)
    load_before = os.getloadavg()[0]  # other work on the node shows in every label: record it
    api = ClusterApi(url, token)
    status = api.status()
    cloud = street_scan(seed=config.seed)
    say("measuring the quiet latency")
    quiet = closed_loop_latency(url, token, cloud, config.calibrate_s)
    quiet_ms = float(np.median(quiet) * 1e3)
    capacity = len(status["replicas"]) / float(np.mean(quiet))
    rows: list[dict] = []
    current = {"run": -1, "phase": -1}
    changes: list[tuple[float, float]] = []  # monotonic windows in which a mix changed
    agent = Agent(
        api,
        AgentConfig(
            interval_s=config.interval_s,
            probe_bursts=config.probe_bursts,
            mitigation=MitigationConfig("off"),
        ),
        on_row=lambda r: rows.append({**r, "run": current["run"], "phase": current["phase"]}),
    )
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,), daemon=True, name="robomr-agent")
    load = PoissonLoad(
        url, token, cloud, deadline_s=max(5.0, 20 * quiet_ms / 1e3), seed=config.seed
    ).start()
    thread.start()
    try:
        for r in range(config.runs):
            rng = np.random.default_rng(config.seed * 1000 + r)
            current["run"] = r
            phases = int(config.run_s // config.phase_s)
            for ph in range(phases):
                m = mix(rng, status["cpus"], config)
                t_change = time.monotonic()
                _clear(api)
                for c in m["corunners"]:
                    api.add_corunner(c)
                agent.executor.apply(
                    [
                        SetBeLimit("collect: seeded mix", m["be_cap"]),
                        SetBeWeight("collect: seeded mix", m["be_shares"]),
                    ]
                )
                if m["pause"] is not None:
                    agent.executor.apply(
                        [PauseCoRunner("collect: seeded mix", f"mix-{m['pause']}")]
                    )
                load.set_rate(m["load_frac"] * capacity)
                current["phase"] = ph
                changes.append((t_change, time.monotonic()))
                say(
                    f"run {r + 1}/{config.runs} phase {ph + 1}/{phases}: "
                    f"{[c['kind'] + '@' + (','.join(map(str, c['cpus'])) or '*') for c in m['corunners']]}"  # noqa: E501
                    f" cap {m['be_cap'] and round(m['be_cap'], 2)} load {m['load_frac']:.2f}; "
                    f"{len(rows)} rows"
                )
                time.sleep(config.phase_s)
            current["run"] = -1  # rows between runs (mix changes) belong to none
    finally:
        stop.set()
        thread.join(timeout=30.0)
        load.stop()
        agent.close()
        _clear(api)
        agent.executor.apply(
            [SetBeLimit("collect: done", None), SetBeWeight("collect: done", DEFAULT_CPU_SHARES)]
        )
    for r in rows:  # was a mix change made while this interval was measured?
        t0, t1 = r.get("t0_s", math.nan), r.get("t1_s", math.nan)
        r["mixed"] = any(t0 < ce and t1 > cs for cs, ce in changes)
    rows = [r for r in rows if r["run"] >= 0]
    meta = {
        "config": asdict(config),
        "quiet_latency_ms": quiet_ms,
        "capacity_per_s": capacity,
        "replicas": [r["name"] for r in status["replicas"]],
        "cpus": status["cpus"],
        "requests": len(load.samples),
        "dropped": load.dropped,
        "cgroups": status["cgroups"],
        "load_average_1m_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    return rows, meta


def _clear(api: Any) -> None:
    for c in api.status()["corunners"]:
        if c["state"] in ("running", "paused"):
            api.corunner_op(c["name"], "stop")


def to_arrays(
    rows: list[dict], quiet_latency_ms: float, horizon: int = 0, aggregate: str = "trimmed"
) -> dict[str, np.ndarray]:
    """Samples (see the module docstring): X [N, F], y (label inflation), last (history
    inflation, the last-value baseline), lat (latency inflation), run [N].

    Rows of an older collection (no bursts, phases or windows) use the agent's inflation and
    pair consecutive steps of a run.

    Raises:
        CollectError: ``horizon`` not 0 or 1 (or a bad ``aggregate``).
    """
    from offload.cluster.features import vector
    from offload.cluster.probe import ProbeError, aggregate_cpi

    if horizon not in (0, 1):
        raise CollectError(f"horizon={horizon} must be 0 (same interval) or 1 (next interval)")

    def inflation(r: dict) -> float:
        bursts = r.get("burst_cpis")
        if not bursts:
            return float(r["inflation"])
        try:
            return aggregate_cpi(bursts, aggregate) / r["reference_cpi"]
        except ProbeError as err:
            raise CollectError(str(err)) from err

    by_key: dict[tuple[int, str, int], dict] = {
        (r["run"], r["replica"], r["step"]): r for r in rows if not r.get("mixed", False)
    }
    X, y, last, lat, run = [], [], [], [], []
    for (ru, rep, step), r in sorted(by_key.items()):
        hist = by_key.get((ru, rep, step - 1)) if horizon == 0 else r
        lab = r if horizon == 0 else by_key.get((ru, rep, step + 1))
        if hist is None or lab is None or hist.get("phase") != lab.get("phase"):
            continue
        h = inflation(hist)
        X.append(vector({**r["features"], "last_inflation": h}))
        y.append(inflation(lab))
        last.append(h)
        lm = lab.get("latency_mean_ms") if horizon == 1 else None  # at horizon 0 the row
        # holds the same interval's P50: a latency label there would be read off the features
        lat.append(lm / quiet_latency_ms if lm is not None and math.isfinite(lm) else math.nan)
        run.append(ru)
    return {
        "X": np.array(X, dtype=float).reshape(-1, len(_features())),
        "y": np.array(y),
        "last": np.array(last),
        "lat": np.array(lat),
        "run": np.array(run, dtype=int),
    }


def label_repeatability(
    rows: list[dict], window: int = 1, aggregate: str = "trimmed", tol: float = 0.10
) -> dict[str, float]:
    """How well a label agrees with itself: the ceiling on any predictor's within-``tol``.

    Each label (``window`` consecutive unmixed intervals of one replica in one phase, all their
    probe bursts) is split into two halves (alternate bursts) and each half aggregated alike;
    a label's error against the CPI its mix would give with infinitely many bursts has about
    the spread of ``|a - b| / 2``, so the share of labels with ``|a - b| / (a + b) <= tol`` is
    about the share a perfect predictor of that CPI would score within ``tol``. Returns
    {"within": share, "n": labels, "bursts": bursts per label (median)}; NaN share without one.
    """
    from offload.cluster.probe import aggregate_cpi

    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if not r.get("mixed", False) and r.get("burst_cpis") and r.get("run", -1) >= 0:
            groups.setdefault((r["run"], r.get("phase"), r["replica"]), []).append(r)
    agree, sizes = [], []
    for g in groups.values():
        g.sort(key=lambda r: r["step"])
        runs_of_steps = [[g[0]]]  # consecutive steps only (a dropped interval breaks a window)
        for r in g[1:]:
            if r["step"] == runs_of_steps[-1][-1]["step"] + 1:
                runs_of_steps[-1].append(r)
            else:
                runs_of_steps.append([r])
        for seq in runs_of_steps:
            for i in range(0, len(seq) - window + 1, window):
                bursts = [b for r in seq[i : i + window] for b in r["burst_cpis"]]
                a = aggregate_cpi(bursts[0::2], aggregate)
                b = aggregate_cpi(bursts[1::2], aggregate)
                if a > 0 and b > 0:
                    agree.append(abs(a - b) / (a + b) <= tol)
                    sizes.append(len(bursts))
    return {
        "within": float(np.mean(agree)) if agree else float("nan"),
        "n": len(agree),
        "bursts": float(np.median(sizes)) if sizes else float("nan"),
    }


def _features() -> tuple[str, ...]:
    from offload.cluster.features import FEATURES

    return FEATURES


def split(data: dict[str, np.ndarray], held_out_runs: list[int]) -> tuple[dict, dict]:
    test = np.isin(data["run"], held_out_runs)
    return ({k: v[~test] for k, v in data.items()}, {k: v[test] for k, v in data.items()})


def held_out(runs: int) -> list[int]:
    """The last quarter of the runs (at least one; none of them seen in training)."""
    k = max(1, runs // 4)
    return list(range(runs - k, runs))


# -- command ------------------------------------------------------------------------------------
def add_arguments(p: argparse.ArgumentParser) -> None:
    d = CollectConfig()
    p.add_argument("--out", type=Path, required=True, help="folder for rows.jsonl, meta.json")
    p.add_argument("--runs", type=int, default=d.runs, help=f"runs (default {d.runs})")
    p.add_argument("--run-s", type=float, default=d.run_s, help="seconds per run")
    p.add_argument("--phase-s", type=float, default=d.phase_s, help="seconds per mix")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--interval", type=float, default=d.interval_s, help="agent interval (s)")
    p.add_argument("--replicas", type=int, default=2)
    p.add_argument(
        "--cluster-shares",
        type=int,
        default=1024,
        help="CPU weight of the cluster's cgroup against the rest of the machine",
    )
    p.add_argument("--train", action="store_true", help="also train and save the predictor")
    p.add_argument("--model-out", type=Path, help="default models/cpi_predictor.txt")
    p.add_argument("--from-rows", type=Path, help="train on an earlier collection's folder")


def collect_command(args: argparse.Namespace) -> int:
    """Collects (in a fresh local cluster) and optionally trains; prints the accuracy table."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.from_rows:
        rows = [json.loads(x) for x in (args.from_rows / "rows.jsonl").read_text().splitlines()]
        meta = json.loads((args.from_rows / "meta.json").read_text())
    else:
        rows, meta = _collect_fresh(args, out)
        (out / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        (out / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        print(f"wrote {len(rows)} rows to {out / 'rows.jsonl'}")
    if args.train:
        train_and_save(rows, meta, args.model_out, " ".join(sys.argv), args.seed)
    return 0


def _collect_fresh(args: argparse.Namespace, out: Path) -> tuple[list[dict], dict]:
    import secrets

    from offload.cluster.local import ClusterError, LocalCluster, LocalClusterConfig

    config = CollectConfig(
        runs=args.runs,
        run_s=args.run_s,
        phase_s=args.phase_s,
        seed=args.seed,
        interval_s=args.interval,
    )
    token = secrets.token_urlsafe(24)
    cfg = LocalClusterConfig(
        token=token,
        work_dir=out / "cluster",
        name="collect",
        replica_args=("--policy", "none", "--no-brownout"),
        cluster_cpu_shares=args.cluster_shares,
    )
    try:
        with LocalCluster(cfg) as cluster:
            url = cluster.up(args.replicas)
            return collect(url, token, config, progress=lambda m: print(m, flush=True))
    except ClusterError as err:
        raise CollectError(str(err)) from err


def train_and_save(
    rows: list[dict], meta: dict, model_out: Path | None, command: str, seed: int
) -> dict[str, dict[str, float]]:
    """Held-out evaluation, then the model (trained on the training runs) with provenance."""
    from bench.report import machine_info
    from offload.cluster.predictor import (
        ACCURACY_DEFINITION,
        DEFAULT_MODEL,
        dataset_sha256,
        evaluate,
    )

    data = to_arrays(rows, meta["quiet_latency_ms"])
    runs = int(meta["config"]["runs"])
    test_runs = held_out(runs)
    train, test = split(data, test_runs)
    scores, model = evaluate(train, test, seed)
    print(ACCURACY_DEFINITION)
    print(LABEL_DEFINITION)
    print(f"{'method':<12} {'within 10%':>10} {'MAPE':>7} {'n':>5}")
    for m, s in scores.items():
        print(f"{m:<12} {s['within10']:>10.3f} {s['mape']:>7.3f} {s['n']:>5}")
    path = Path(model_out or DEFAULT_MODEL)
    model.save(
        path,
        {
            "command": command,
            "seed": seed,
            "trained_on_runs": sorted(set(range(runs)) - set(test_runs)),
            "held_out_runs": test_runs,
            "rows": len(data["y"]),
            "dataset_sha256": dataset_sha256(data["X"], data["y"]),
            "held_out_scores": scores,
            "accuracy_definition": ACCURACY_DEFINITION,
            "label_definition": LABEL_DEFINITION,
            "collection": meta,
            "machine": machine_info(),
            "trained_unix_s": time.time(),
        },
    )
    print(f"saved {path} and {path.with_suffix('.json')}")
    return scores
