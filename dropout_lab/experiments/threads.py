"""One thread for the page experiments: small networks train several times faster on a
busy 2-core machine without torch's thread pool, and the numbers do not depend on the
machine's thread count. Every setting is restored afterwards."""
from __future__ import annotations

import contextlib
import functools


@contextlib.contextmanager
def one_thread(numpy_too: bool = False):
    """torch on one thread; with ``numpy_too`` also numpy's BLAS (threadpoolctl)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        if numpy_too:
            from threadpoolctl import threadpool_limits

            with threadpool_limits(limits=1):
                yield
        else:
            yield
    finally:
        torch.set_num_threads(before)


def single_threaded(numpy_too: bool = False):
    """Decorator: run the function inside :func:`one_thread` (same ``numpy_too``)."""
    def decorate(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with one_thread(numpy_too=numpy_too):
                return func(*args, **kwargs)
        return wrapper
    return decorate
