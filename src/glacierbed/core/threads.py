"""Thread settings for torch and the BLAS/OpenMP pools, set for a block of work and restored after it."""

from __future__ import annotations

import sys
import threading
from contextlib import contextmanager
from typing import Iterator

#: re-entrant: a block may open another inside it (a trainer calling the simulator, say)
_LOCK = threading.RLock()


@contextmanager
def torch_threads(n: int | None, blas: bool = False) -> Iterator[None]:
    """Torch (and with ``blas`` the BLAS/OpenMP pools) on ``n`` threads inside the block.

    ``n=None`` leaves the caller's count as it is (it is still restored after). Torch's
    thread count is process-wide, so a lock keeps concurrent blocks of one process
    (threaded Dask workers) from leaving it changed: such blocks run one at a time, nested
    blocks of one thread are fine. The previous count is restored on exit, errors included.
    """
    torch = sys.modules.get("torch")
    if torch is None:  # nothing in this process runs torch (an ONNX model, a classical fill): nothing to set
        with blas_threads(n if blas else None):
            yield
        return
    with _LOCK:
        previous = torch.get_num_threads()
        if n is not None:
            torch.set_num_threads(n)
        try:
            with blas_threads(n if blas else None):
                yield
        finally:
            torch.set_num_threads(previous)


@contextmanager
def blas_threads(n: int | None) -> Iterator[None]:
    """The BLAS/OpenMP pools (numpy, scipy) on ``n`` threads inside the block (``None``: as they
    are); torch is not imported."""
    if n is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(n):
        yield
