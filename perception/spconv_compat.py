"""spconv 2.3.8 on CPU: the one place where the project adjusts the spconv library.

Three CPU limits of spconv, each handled here or noted here:

1. **Backward without CUDA.** The backward pass calls ``spconv.pytorch.ops.get_current_stream``,
   which asks ``torch.cuda`` for the current stream and fails on a machine without CUDA. The CPU
   kernels ignore the stream handle, so on such a machine the function is replaced by one that
   returns 0 (the default stream). Only applied when CUDA is unavailable.
2. **Wrong results with more than one thread.** ``SpconvOps.scatter_add_cpu`` (the scatter step
   of every CPU convolution, forward and backward) runs its loop on torch's thread pool but keeps
   its row pointers in variables shared by all threads (``csrc/sparse/gather.py`` captures
   ``buf``/``out_ptr`` by reference), so with 2 threads rows are added to the wrong outputs:
   measured on a simulator frame, the first SubMConv3d deviated from a dense-convolution reference
   by up to 9.5 (output scale 18) and weight gradients by 7 % to 19 %; with 1 thread it matches
   to 4e-6. ``spconv.pytorch.ops.SpconvOps`` is replaced by a proxy whose ``scatter_add_cpu``
   is ``torch.Tensor.index_add_`` on the same memory (thread-safe, still parallel) when torch
   runs more than one thread, and spconv's own loop (about 10 % faster, exact on one thread)
   otherwise; every other operation is spconv's own. Applied on every machine: only CPU
   tensors reach this function.
3. **Bias in eval mode.** spconv's CPU convolution rejects a bias in ``.eval()`` ("cpu don't
   support act and bias"): no patch, every spconv layer of ``perception.backbone`` has
   ``bias=False`` followed by a BatchNorm.

:func:`ensure_cpu_support` applies 1 and 2 once; ``perception.backbone`` calls it on import.
"""

from __future__ import annotations

import logging
from typing import Any

import spconv.pytorch.ops as spconv_ops
import torch

log = logging.getLogger(__name__)
# spconv's modules ask torch.fx.is_fx_tracing() on every call, which makes torch log a
# deprecation warning about that function once per process: not actionable for us.
logging.getLogger("torch.fx._symbolic_trace").setLevel(logging.ERROR)

_ORIGINAL_OPS = spconv_ops.SpconvOps


def _default_stream() -> int:
    return 0


class _ThreadSafeSpconvOps:
    """``SpconvOps`` with a thread-safe ``scatter_add_cpu``; everything else delegated."""

    def __getattr__(self, name: str) -> Any:
        return getattr(_ORIGINAL_OPS, name)

    @staticmethod
    def scatter_add_cpu(out: Any, source: Any, indices: Any) -> None:
        """out[indices[i]] += source[i] for i < len(indices) (cumm ``tv.Tensor`` arguments)."""
        if torch.get_num_threads() == 1:  # no race on one thread: spconv's loop is faster
            _ORIGINAL_OPS.scatter_add_cpu(out, source, indices)
            return
        target = torch.from_numpy(out.numpy_view())  # [N_out, C], shares out's memory
        rows = torch.from_numpy(indices.numpy_view()).long()  # [n]
        values = torch.from_numpy(source.numpy_view())[: len(rows)]  # [n, C]
        target.index_add_(0, rows, values)


def ensure_cpu_support() -> None:
    """Applies the fixes 1 (without CUDA only) and 2 of the module docstring; idempotent."""
    if not isinstance(spconv_ops.SpconvOps, _ThreadSafeSpconvOps):
        spconv_ops.SpconvOps = _ThreadSafeSpconvOps()
        log.debug("spconv scatter_add_cpu replaced by a thread-safe index_add_")
    if not torch.cuda.is_available() and spconv_ops.get_current_stream is not _default_stream:
        spconv_ops.get_current_stream = _default_stream
        log.debug("CUDA unavailable: spconv get_current_stream patched to return 0")
