"""The registry of entry points: every function of the boundary that takes input a pull request
can shape registers itself here with `entry_point`, naming the input. docs/security.md lists the
same functions; tests/test_security.py feeds each of them the hostile-input corpus and fails when
a registered function is missing from the inventory (or the inventory names one that is gone)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable[..., object])

# dotted name of the function -> the input it validates, as docs/security.md names it
ENTRY_POINTS: dict[str, str] = {}


def entry_point(what: str) -> Callable[[F], F]:
    """Register the decorated function as the one way `what` enters mlops-ci."""

    def register(fn: F) -> F:
        ENTRY_POINTS[f"{fn.__module__}.{fn.__qualname__}"] = what
        return fn

    return register


def load_all() -> dict[str, str]:
    """Every entry point, after importing every module of the boundary."""
    import importlib
    import pkgutil
    from pathlib import Path

    package = __name__.rsplit(".", 1)[0]
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        importlib.import_module(f"{package}.{info.name}")
    return dict(ENTRY_POINTS)
