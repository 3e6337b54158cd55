"""Thread settings for torch, set for a block of work and restored after it."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

_LOCK = threading.Lock()


@contextmanager
def torch_threads(n: int, blas: bool = False) -> Iterator[None]:
    """Torch (and with ``blas`` the BLAS/OpenMP pools) on ``n`` threads inside the block.

    Torch's thread count is process-wide, so a lock keeps concurrent blocks of one process
    (threaded Dask workers) from leaving it changed; the previous count is restored.
    """
    import torch

    with _LOCK:
        previous = torch.get_num_threads()
        torch.set_num_threads(n)
        try:
            if blas:
                from threadpoolctl import threadpool_limits

                with threadpool_limits(n):
                    yield
            else:
                yield
        finally:
            torch.set_num_threads(previous)
