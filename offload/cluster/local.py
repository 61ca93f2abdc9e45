"""The local backend: replica processes on loopback behind a router, co-runners, cgroups.

Layout (cgroup tree ``robomr-<cluster id>`` at the top level, every hierarchy the machine offers):

    robomr-<id>/ls/replica-<i>   one serving replica (``python -m offload.serving``), its cpuset
    robomr-<id>/be               the best-effort group: CPU suppress caps it (Koordinator's
                                 besteffort cgroup); its weight is ``be_cpu_shares``
    robomr-<id>/be/<name>        one co-runner (``python -m offload.cluster.corunner``)

The router (:mod:`offload.cluster.router`) is the cluster's one URL and serves the admin API
whose handlers are this class's methods. Every process is started from one long-lived thread of
this object, through the launcher that ties it to us (:mod:`offload.cluster.spawn`): a cluster
that dies takes its processes with it. The node agent is a separate process (or an in-process
object in benchmarks) that only reads status and turns knobs: if it dies, the replicas and the
router keep serving, and :meth:`supervise_agent` starts it again (as a DaemonSet would).

Without cgroups (no root) the cluster still runs: co-runners are pinned with
``sched_setaffinity`` and paused with signals; CPU caps are refused with the reason
(``status()["cgroups"]``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from offload.cluster.balance import Balancer
from offload.cluster.cgroups import (
    DEFAULT_CPU_SHARES,
    Cgroup,
    CgroupError,
    CgroupSupport,
    detect,
)
from offload.cluster.corunner import CoRunnerError
from offload.cluster.corunners import CoRunner, CoRunnerSpec
from offload.cluster.executor import Executor
from offload.cluster.mitigation import placement
from offload.cluster.router import Router
from offload.cluster.spawn import popen

log = logging.getLogger(__name__)
PLACEMENTS = ("spread", "aware")


class ClusterError(RuntimeError):
    """The cluster cannot do what was asked (the message says why)."""


@dataclass(frozen=True)
class LocalClusterConfig:
    """Settings of a local cluster.

    Attributes:
        name: cluster name ([a-z0-9-]); the cgroup tree is ``robomr-<name>-<random>``.
        replica_args: options of every replica (``--models``, ``--policy`` ...); the cluster
            adds host, port, ready file and token.
        token: the bearer token of replicas and admin API (>= 16 characters).
        pin_replicas: give each replica one cpu (placement chooses which).
        placement: ``spread`` (fewest replicas, then least BE CPU) or ``aware`` (least
            predicted inflation, from the agent's last report; spread without one).
        be_cpu_shares: weight of the best-effort group, 2..262144 (1024: as much as the LS
            group; Kubernetes gives BestEffort pods 2).
        cluster_cpu_shares: weight of the whole cluster against the rest of the machine.
        work_dir: logs, ready files, co-runner counters.
        start_timeout_s: how long a replica may take to become ready (s).
    """

    token: str
    work_dir: Path
    name: str = "local"
    replica_args: tuple[str, ...] = ()
    pin_replicas: bool = True
    placement: str = "spread"
    be_cpu_shares: int = DEFAULT_CPU_SHARES
    cluster_cpu_shares: int = DEFAULT_CPU_SHARES
    start_timeout_s: float = 300.0

    def __post_init__(self) -> None:
        if len(self.token) < 16:
            raise ClusterError("token must have at least 16 characters")
        if self.placement not in PLACEMENTS:
            raise ClusterError(f"placement={self.placement!r} must be one of {PLACEMENTS}")
        if not all(c.isalnum() or c == "-" for c in self.name) or not self.name:
            raise ClusterError(f"name={self.name!r} must be letters, digits and '-'")


@dataclass
class ReplicaProc:
    """One replica process."""

    name: str
    cpus: tuple[int, ...]
    proc: subprocess.Popen
    cgroup: Cgroup | None
    url: str = ""
    log: Path = field(default_factory=Path)


class LocalCluster:
    """See the module docstring. Use as a context manager or call :meth:`up` / :meth:`down`.

    Args:
        config: settings.
        support: the cgroup roles to use (default: what :func:`detect` finds).
    """

    def __init__(self, config: LocalClusterConfig, support: CgroupSupport | None = None) -> None:
        from offload.client import quiet_httpx

        quiet_httpx()
        self.config = config
        self.id = f"{config.name}-{uuid.uuid4().hex[:6]}"
        self.support: CgroupSupport = support or detect()  # tests pass a machine without
        self.cpus = sorted(os.sched_getaffinity(0))
        self.balancer = Balancer()
        self.router = Router(self.balancer, self, config.token)
        self.replicas: dict[str, ReplicaProc] = {}
        self.corunners: dict[str, CoRunner] = {}
        self.agent_report: dict[str, Any] = {}
        self.agent_proc: subprocess.Popen | None = None
        self.stopped = threading.Event()
        self.down_requested = threading.Event()
        self._ops = ThreadPoolExecutor(max_workers=1, thread_name_prefix="robomr-cluster")
        self._next_replica = 0
        self._token_file = Path(config.work_dir) / "token"
        self._agent_args: list[str] = []
        self.groups: dict[str, Cgroup | None] = {"root": None, "ls": None, "be": None}
        self.executor = Executor(_PlaceTargets(self), Path(config.work_dir) / "placement.jsonl")

    # -- lifecycle ------------------------------------------------------------------------------
    def up(self, replicas: int) -> str:
        """Creates the groups, starts the router and ``replicas`` replicas; returns the URL.

        Raises:
            ClusterError: a replica did not become ready (its log tail is in the message).
        """
        work = Path(self.config.work_dir)
        work.mkdir(parents=True, exist_ok=True)
        self._token_file.write_text(self.config.token)
        self._token_file.chmod(0o600)
        self._make_groups()
        url = self.router.start()
        self.scale(replicas)
        log.info(
            "cluster %s up at %s (%d replicas; cgroups %s)",
            self.id,
            url,
            replicas,
            self.support.version,
        )
        return url

    def _make_groups(self) -> None:
        if self.support.version == "none":
            log.warning("running without cgroups:\n%s", self.support.summary())
            return
        root = Cgroup(self.support, f"robomr-{self.id}").create()  # top level: its weight
        # competes with the rest of the machine directly
        self.groups = {
            "root": root,
            "ls": Cgroup(self.support, f"{root.rel}/ls").create(),
            "be": Cgroup(self.support, f"{root.rel}/be").create(),
        }
        for key, shares in (
            ("root", self.config.cluster_cpu_shares),
            ("be", self.config.be_cpu_shares),
        ):
            try:
                self.groups[key].set_cpu_weight(shares)  # type: ignore[union-attr]
            except CgroupError as err:
                log.warning("%s weight not set: %s", key, err)

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    def down(self) -> None:
        """Stops the agent, co-runners, replicas (gracefully) and the router; removes groups."""
        if self.stopped.is_set():
            return
        self.stopped.set()
        self.stop_agent()
        for c in list(self.corunners.values()):
            c.stop()
        procs = [r.proc for r in self.replicas.values()]
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(40.0)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.router.stop()
        if self.groups["root"] is not None:
            with contextlib.suppress(CgroupError):
                self.groups["root"].remove()
        self._ops.shutdown(wait=False)

    # -- replicas -------------------------------------------------------------------------------
    def scale(self, replicas: int) -> dict[str, Any]:
        """Starts or stops replicas until there are ``replicas`` (>= 1); new ones are placed
        by :attr:`LocalClusterConfig.placement`, removed ones drain gracefully (newest first).

        Raises:
            ClusterError: replicas < 1, or a new replica failed to start.
        """
        if replicas < 1:
            raise ValueError(f"replicas={replicas} must be >= 1")
        return self._ops.submit(self._scale, replicas).result()

    def _scale(self, replicas: int) -> dict[str, Any]:
        while len(self.replicas) > replicas:
            name = list(self.replicas)[-1]
            r = self.replicas.pop(name)
            self.balancer.remove(name)
            r.proc.terminate()  # graceful: requests already received finish
            with contextlib.suppress(subprocess.TimeoutExpired):
                r.proc.wait(40.0)
            if r.proc.poll() is None:
                r.proc.kill()
        new: list[ReplicaProc] = []
        while len(self.replicas) + len(new) < replicas:
            new.append(self._start_replica(self._place([r.cpus for r in new])))
        self._wait_ready(new)
        return {"replicas": [r.name for r in self.replicas.values()]}

    def _place(self, planned: list[tuple[int, ...]]) -> tuple[int, ...]:
        """The cpus of the next replica (``planned``: cpus of replicas started in the same
        call, not yet ready)."""
        if not self.config.pin_replicas:
            return ()
        predicted = self.agent_report.get("placement_inflation", {})
        cands = []
        for cpu in self.cpus:
            ls = sum(cpu in r.cpus for r in self.replicas.values())
            ls += sum(cpu in cpus for cpus in planned)
            be = sum(
                c.spec.duty
                for c in self.corunners.values()  # their nominal CPU use
                if c.alive() and (not c.spec.cpus or cpu in c.spec.cpus)
            )
            aware = self.config.placement == "aware"
            infl = float(predicted.get(str(cpu), "nan")) if aware else float("nan")
            cands.append(placement.Candidate((cpu,), infl, ls, be))
        (action,), _ = placement.decide(tuple(cands), placement.PlacementState())
        self.executor.apply([action])
        return action.cpus  # type: ignore[attr-defined]

    def _start_replica(self, cpus: tuple[int, ...]) -> ReplicaProc:
        name = f"replica-{self._next_replica}"
        self._next_replica += 1
        work = Path(self.config.work_dir)
        ready = work / f"{name}.ready.json"
        ready.unlink(missing_ok=True)
        cgroup = None
        if self.groups["ls"] is not None:
            cgroup = Cgroup(self.support, f"{self.groups['ls'].rel}/{name}").create()
            if cpus and self.support.has("cpuset"):
                cgroup.set_cpuset(cpus)
        argv = [
            sys.executable,
            "-m",
            "offload.serving",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--ready-file",
            str(ready),
            "--token-file",
            str(self._token_file),
            *self.config.replica_args,
        ]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        logf = work / f"{name}.log"
        proc = popen(argv, cgroup.procs_files() if cgroup else [], logf, env)
        if cpus and (cgroup is None or not self.support.has("cpuset")):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(proc.pid, cpus)
        return ReplicaProc(name, cpus, proc, cgroup, "", logf)

    def _wait_ready(self, new: list[ReplicaProc]) -> None:
        end = time.monotonic() + self.config.start_timeout_s
        work = Path(self.config.work_dir)
        try:
            for r in new:
                ready = work / f"{r.name}.ready.json"
                while not r.url:
                    self._check(r, end)
                    if ready.exists():
                        r.url = json.loads(ready.read_text())["url"]
                    time.sleep(0.05)
                with httpx.Client(timeout=2.0) as http:
                    while True:
                        self._check(r, end)
                        with contextlib.suppress(httpx.HTTPError):
                            if http.get(r.url + "/readyz").status_code == 200:
                                break
                        time.sleep(0.1)
                self.replicas[r.name] = r
                self.balancer.add(r.name, r.url)
        except ClusterError:
            for r in new:
                if r.name not in self.replicas and r.proc.poll() is None:
                    r.proc.kill()
            raise

    def _check(self, r: ReplicaProc, end: float) -> None:
        code = r.proc.poll()
        if code is not None or time.monotonic() > end:
            tail = "\n".join(r.log.read_text(errors="replace").splitlines()[-12:])
            why = f"exited with {code}" if code is not None else "was not ready in time"
            raise ClusterError(f"{r.name} {why}; log {r.log}:\n{tail}")

    # -- co-runners -----------------------------------------------------------------------------
    def add_corunner(self, body: dict[str, Any]) -> dict[str, Any]:
        """Starts a co-runner: ``{"kind", "name"?, "cpus"?, "duty"?, "working_set_mib"?,
        "seed"?}`` (the name defaults to ``<kind>-<n>``).

        Raises:
            ValueError: a bad field or a name in use.
        """
        n = len(self.corunners)
        try:
            spec = CoRunnerSpec(
                name=str(body.get("name") or f"{body.get('kind')}-{n}"),
                kind=str(body.get("kind")),
                cpus=tuple(int(c) for c in body.get("cpus", ())),
                duty=float(body.get("duty", 1.0)),
                working_set_mib=body.get("working_set_mib"),
                seed=int(body.get("seed", n)),
            )
        except (CoRunnerError, TypeError) as err:
            raise ValueError(str(err)) from err
        if spec.name in self.corunners and self.corunners[spec.name].alive():
            raise ValueError(f"a co-runner named {spec.name} is running")
        bad = set(spec.cpus) - set(self.cpus)
        if bad:
            raise ValueError(f"cpus {sorted(bad)} are not available (this node has {self.cpus})")
        return self._ops.submit(self._start_corunner, spec).result()

    def _start_corunner(self, spec: CoRunnerSpec) -> dict[str, Any]:
        cgroup = None
        if self.groups["be"] is not None:
            cgroup = Cgroup(self.support, f"{self.groups['be'].rel}/{spec.name}").create()
            # a group outlives its co-runner: a later one of the same name must not inherit
            # its pin or the agent's cap
            if self.support.has("cpuset"):
                cgroup.set_cpuset(spec.cpus or self.cpus)
            if self.support.has("cpu"):
                cgroup.set_cpu_limit(None)
        c = CoRunner(spec, cgroup, Path(self.config.work_dir) / "corunners")
        c.start()
        self.corunners[spec.name] = c
        return c.describe()

    def corunner_op(self, name: str, op: str) -> dict[str, Any]:
        """``pause``, ``resume``, ``stop`` or ``evict`` a co-runner.

        Raises:
            ValueError: unknown co-runner or operation.
        """
        if name not in self.corunners:
            raise ValueError(f"no co-runner named {name!r} (have: {sorted(self.corunners)})")
        c = self.corunners[name]
        ops = {
            "pause": c.pause,
            "resume": c.resume,
            "stop": c.stop,
            "evict": lambda: c.stop(evicted=True),
        }
        if op not in ops:
            raise ValueError(f"op={op!r} must be one of {sorted(ops)}")
        self._ops.submit(ops[op]).result()
        return c.describe()

    # -- status and agent -----------------------------------------------------------------------
    def status(self, window_s: float = 5.0) -> dict[str, Any]:
        """Everything ``robomr cluster status`` shows and the agent reads (request rates and
        latencies over the last ``window_s``)."""
        routed = {r["name"]: r for r in self.balancer.snapshot(window_s)}
        replicas = []
        for r in list(self.replicas.values()):
            replicas.append(
                {
                    **routed.get(r.name, {}),
                    "name": r.name,
                    "url": r.url,
                    "pid": r.proc.pid,
                    "alive": r.proc.poll() is None,
                    "cpus": list(r.cpus),
                    "qos": "LS",
                    "cgroup": r.cgroup.rel if r.cgroup else None,
                }
            )
        be = self.groups["be"]
        limit, shares = None, None
        if be is not None:
            with contextlib.suppress(CgroupError):
                limit = be.cpu_limit()
            with contextlib.suppress(CgroupError, ValueError):
                shares = be.cpu_weight()
        return {
            "backend": "local",
            "id": self.id,
            "url": self.router.url,
            "cpus": self.cpus,
            "replicas": replicas,
            "corunners": [c.describe() for c in self.corunners.values()],
            "be_cgroup": be.rel if be else None,
            "be_limit_cores": limit,
            "be_shares": shares,
            "cgroups": {"version": self.support.version, "missing": self.support.missing},
            "agent": {
                **self.agent_report,
                "pid": self.agent_proc.pid if self.agent_proc else None,
                "alive": self.agent_proc is not None and self.agent_proc.poll() is None,
            },
        }

    def request_down(self) -> None:
        """Asks :meth:`serve_forever` to stop (the admin API cannot stop its own router)."""
        self.down_requested.set()

    def serve_forever(self, poll_s: float = 1.0) -> None:
        """Blocks until :meth:`request_down` (or SIGTERM/SIGINT, which the caller maps to it),
        restarting the agent when it exits; then :meth:`down`."""
        try:
            while not self.down_requested.wait(poll_s):
                self.supervise_agent()
        finally:
            self.down()

    def report(self, body: dict[str, Any]) -> None:
        """The agent's latest observation (shown by status, exported as metrics)."""
        self.agent_report = dict(body)

    def start_agent(self, args: list[str]) -> None:
        """Starts the node agent process (``python -m offload.cluster.agent``) against this
        cluster's router with ``args`` (variant, model, interval)."""

        def start() -> None:
            argv = [
                sys.executable,
                "-m",
                "offload.cluster.agent",
                "--router",
                self.router.url,
                "--token-file",
                str(self._token_file),
                *args,
            ]
            self.agent_proc = popen(
                argv,
                [],
                Path(self.config.work_dir) / "agent.log",
                {**os.environ, "OMP_NUM_THREADS": "1"},
            )
            self._agent_args = list(args)

        self._ops.submit(start).result()

    def supervise_agent(self, backoff_s: float = 2.0) -> bool:
        """Restarts the agent if it exited (call periodically); True if it was restarted."""
        p = self.agent_proc
        if p is None or p.poll() is None or self.stopped.is_set():
            return False
        log.warning("agent exited with %s; restarting in %.0f s", p.returncode, backoff_s)
        time.sleep(backoff_s)
        self.start_agent(self._agent_args)
        return True

    def stop_agent(self) -> None:
        p = self.agent_proc
        if p is not None and p.poll() is None:
            p.terminate()
            try:
                p.wait(10.0)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


class _PlaceTargets:
    """The cluster's executor only places replicas (logged like every other change); the
    agent's executor owns every other knob."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster

    def place(self, cpus: tuple[int, ...]) -> None:
        """The replica is started by the caller right after (on the same thread)."""

    def be_limit(self) -> float | None:
        raise ClusterError("placement targets do not hold the BE limit")

    def set_be_limit(self, cores: float | None) -> None:
        raise ClusterError("the agent's executor sets the BE limit")

    def be_weight(self) -> int:
        raise ClusterError("placement targets do not hold the BE weight")

    def set_be_weight(self, shares: int) -> None:
        raise ClusterError("the agent's executor sets the BE weight")

    def pause(self, name: str, paused: bool) -> None:
        raise ClusterError("the agent's executor pauses co-runners")

    def corunner_limit(self, name: str) -> float | None:
        raise ClusterError("placement targets do not hold co-runner caps")

    def throttle(self, name: str, cores: float | None) -> None:
        raise ClusterError("the agent's executor caps co-runners")

    def evict(self, name: str) -> None:
        raise ClusterError("the agent's executor evicts co-runners")

    def weights(self) -> dict[str, float]:
        return {}

    def set_weights(self, weights: dict[str, float]) -> None:
        raise ClusterError("the agent's executor steers")
