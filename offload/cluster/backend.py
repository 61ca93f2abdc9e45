"""The one cluster interface both backends implement (the contract tests run against each).

- ``up(replicas) -> url``: local: router, replica processes, cgroups; Kubernetes: apply
  deploy/ (rendered like kustomize) and scale the Deployment.
- ``status(window_s)``: local: replicas, co-runners, cgroups, agent; Kubernetes: pods with
  their QoS labels and readiness, co-runner pods, agent pods.
- ``scale(replicas)``: local: start/stop processes (placement); Kubernetes: patch the
  Deployment's scale subresource.
- ``add_corunner(body)``: local: a co-runner process in the BE group; Kubernetes: a BE pod
  from deploy/besteffort/corunner-pod.yaml.
- ``corunner_op(name, op)``: local: freezer, signals, stop; Kubernetes: ``stop`` deletes the
  pod, ``evict`` uses the Eviction API, ``pause``/``resume`` are the node agent's (refused).
- ``down()``: local: stop everything, remove the groups; Kubernetes: delete what ``up``
  created.

``status`` returns a dict with at least ``backend``, ``replicas`` (each ``name``, ``cpus`` or
``node``, ``qos``) and ``corunners`` (each ``name``, ``kind``, ``state``).
"""

from __future__ import annotations

from typing import Any, Protocol


class ClusterBackend(Protocol):
    def up(self, replicas: int) -> str: ...

    def status(self, window_s: float = 5.0) -> dict[str, Any]: ...

    def scale(self, replicas: int) -> dict[str, Any]: ...

    def add_corunner(self, body: dict[str, Any]) -> dict[str, Any]: ...

    def corunner_op(self, name: str, op: str) -> dict[str, Any]: ...

    def down(self) -> None: ...
