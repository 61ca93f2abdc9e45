"""The model interface of the inference service, and the registry of servable models.

A served model turns decoded request bodies into batches it can run. The contract (who calls
what, how often):

- the server constructs the model once per replica process and runs :meth:`example` on each
  path (warm-up and service-time prior) before ``/readyz`` turns ready;
- :meth:`parse` and :meth:`cost` run on the event-loop thread for every request, so they must be
  cheap (validation and a size count, no inference);
- :meth:`run` runs on the model's own worker thread, one batch at a time, with requests that all
  take the same :data:`Path`; it returns one result per request, in order, where a result may be
  an :class:`ItemError` (that request's input was bad; the others are unaffected);
- :meth:`encode` turns a result into the response header and arrays (event-loop thread).

``cost`` is in the model's own unit (``unit``: points for the detector, pixels for the renderer,
tokens for a language model) and drives bucketing, batch caps and the service-time model;
``memory(path)`` says how many bytes a batch needs, so a batching policy can keep every batch
inside a memory budget. A model with a cheaper degraded path (``has_brownout``) serves a share of
requests with it when the brownout controller lowers tau (``offload.serving.brownout``).

A token-level model (continuous batching) fits the same interface with ``run`` as one decode
step of the batch; its batch loop is then iteration-level, which a later model may bring as its
own policy: the server keeps one scheduler and one worker per model (``offload.serving.batcher``).
"""

from __future__ import annotations

import abc
import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from offload.serving.wire import Message

Path = Literal["full", "brownout"]
PATHS: tuple[Path, ...] = ("full", "brownout")


class ModelError(RuntimeError):
    """A model cannot be built or loaded (missing weights or map, unknown model name)."""


class ItemError(ValueError):
    """One request's input is unusable (answered 400); the rest of its batch runs normally."""


@dataclass(frozen=True)
class MemoryModel:
    """Bytes a batch needs: ``fixed_bytes_per_item`` per request plus ``bytes_per_unit`` per
    unit of cost (activations that grow with the request's size)."""

    fixed_bytes_per_item: float
    bytes_per_unit: float

    def __post_init__(self) -> None:
        if self.fixed_bytes_per_item < 0 or self.bytes_per_unit < 0:
            raise ModelError("memory model coefficients must be >= 0")

    def batch_bytes(self, costs: Sequence[int]) -> float:
        """Bytes of a batch of requests of these costs."""
        return len(costs) * self.fixed_bytes_per_item + sum(costs) * self.bytes_per_unit

    def item_bytes(self, cost: float) -> float:
        """Bytes one request of ``cost`` units adds to a batch."""
        return self.fixed_bytes_per_item + cost * self.bytes_per_unit


class ServedModel(abc.ABC):
    """One model behind the service (see the module docstring for the calling contract).

    Attributes:
        name: model name in URLs, metrics and ``--models``.
        route: POST route of its inference endpoint, e.g. ``/v1/detect``.
        unit: what ``cost`` counts (plural noun).
        max_cost: the largest admissible request, in units (a larger one is answered 413).
        has_brownout: whether ``run(batch, "brownout")`` is a cheaper degraded path.
        version: a short string identifying the weights/map (returned with every result).
    """

    name: str
    route: str
    unit: str
    max_cost: int
    has_brownout: bool = False
    version: str = ""

    @abc.abstractmethod
    def parse(self, message: Message) -> Any:
        """The request of a decoded body.

        Raises:
            WireError: a field or array is missing or malformed (answered 400).
        """

    @abc.abstractmethod
    def cost(self, request: Any, path: Path) -> int:
        """Cost of ``request`` on ``path`` in ``unit``s, >= 1."""

    @abc.abstractmethod
    def memory(self, path: Path) -> MemoryModel:
        """Memory a batch on ``path`` needs."""

    @abc.abstractmethod
    def run(self, batch: Sequence[Any], path: Path) -> list[Any]:
        """Results of a batch (one per request, in order; :class:`ItemError` for bad items)."""

    @abc.abstractmethod
    def encode(self, result: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """(header fields, named arrays) of a response body."""

    def example(self) -> Any | None:
        """A representative request, or None. The replica runs it on every path before it
        reports ready (first-call costs: kernels, caches) and times it as the prior of the
        service-time model."""
        return None


# name -> "module:Class"; ``Class.from_options(**options)`` builds it (options:
# ServeConfig.model_options[name]). A later model (e.g. a language model) adds one line.
MODEL_FACTORIES: dict[str, str] = {
    "detector": "offload.serving.models.detector:DetectorModel",
    "gs_render": "offload.serving.models.renderer:RenderModel",
    # token-level (``token_level = True``): the replica runs its engine, not a ModelWorker
    "lm": "offload.serving.models.lm:LMModel",
}


def model_class(name: str) -> type[ServedModel]:
    """The class registered as ``name`` (its ``route`` and ``unit`` are class attributes).

    Raises:
        ModelError: unknown name.
    """
    if name not in MODEL_FACTORIES:
        raise ModelError(f"unknown model {name!r}; known: {sorted(MODEL_FACTORIES)}")
    module, cls = MODEL_FACTORIES[name].split(":")
    return getattr(importlib.import_module(module), cls)


def build_model(name: str, options: dict[str, Any] | None = None) -> ServedModel:
    """Constructs the registered model ``name`` with ``options``.

    Raises:
        ModelError: unknown name, or the model could not be built (its message says why).
    """
    cls: Any = model_class(name)
    try:
        return cls.from_options(**(options or {}))
    except TypeError as err:
        raise ModelError(f"model {name}: bad options {sorted(options or {})}: {err}") from err
