"""The inference service: models behind one interface, batching policies, brownout.

Layers (pure core under a thin server):

* ``wire``: the binary body format (JSON header + raw little-endian arrays, size limits).
* ``model``: the model interface (``ServedModel``: parse, cost, memory, run, encode, an
  optional brownout path) and the registry of servable models (``models/``: detector, gs_render).
* ``policy`` (baselines none/static/fifo), ``bucket`` (BucketServe): batching policies, pure.
* ``brownout``: BrownoutServe's control law ``decide(observation, state, config)``, pure.
* ``service_time``: online per-model service-time fits; ``scheduler``: one model's admission,
  policy, brownout and service-time models on a caller-supplied clock.
* ``batcher`` (asyncio loop per model), ``app`` (FastAPI routes, auth, metrics), ``server``
  (uvicorn, graceful shutdown, command line), ``simulate`` (the same schedulers on a virtual
  clock, for benchmarks).

See docs/offload.md.
"""
