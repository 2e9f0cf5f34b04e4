"""numpy (`np`) and pandas (`pd`, loaded on first use), with OpenBLAS held to one thread.

OpenBLAS starts a worker thread per core when it loads, and each spins for about a tenth of a
second of CPU after start-up and after every call. Nothing here wants a second BLAS thread
(the bootstrap runs on one, `stats`), so on a two-core runner the spinning only takes the
other core away from git and the stages. The variable is set only while numpy loads, so the
stages DVC starts later keep the user's own setting; a user who sets it keeps theirs here too.

    from mlops_ci.compare.numeric import np, pd
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any

_LOADED_BEFORE = "numpy" in sys.modules
_ASKED = os.environ.get("OPENBLAS_NUM_THREADS")
if _LOADED_BEFORE or _ASKED is not None:
    import numpy as np
else:
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    try:
        import numpy as np
    finally:
        del os.environ["OPENBLAS_NUM_THREADS"]


def one_blas_thread() -> contextlib.AbstractContextManager[object]:
    """A block that runs BLAS on one thread, whichever BLAS numpy was built with."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def __getattr__(name: str) -> Any:
    if name == "pd":  # pandas costs 0.3 s to import: only the modules that read tables ask
        import pandas

        return pandas
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["np", "one_blas_thread"]  # and `pd`, through __getattr__
