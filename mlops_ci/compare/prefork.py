"""A forked helper that loads numpy while `compare` reads git, then bootstraps the intervals.

Loading numpy and bootstrapping are about a third of a `compare` on a small project, and the
interval family can only start once both snapshots and the noise history are read. So, on
Linux, `compare` forks this helper as soon as it knows the project has predictions: the child
loads numpy and the bootstrap's modules on the other core while the parent reads git, then
takes one job and sends its result back pickled, in plain Python numbers, so the parent never
loads numpy at all.

Whatever goes wrong on the helper's side (it died, the job raised, a result that does not
pickle) makes the parent run the same job itself: the answer, or the error the user sees, is
always the one the in-process call gives. No helper where forking is unsafe or pointless:
another thread runs, numpy is already loaded (`pr` loads it while the stages run), one core,
not Linux, or `MLOPS_CI_PREFORK=0`.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pickle
import re
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

_T = TypeVar("_T")

# What the child loads before it waits for its job: the bootstrap's modules, numpy with them.
# numpy.random loads on the first resample, not with numpy.
PRELOAD = (
    "mlops_ci.compare.stats",
    "mlops_ci.compare.family",
    "numpy.random",
    "mlops_ci.compare.decide",
)
# Jobs larger than this (the predictions files) run in the parent: past it, parsing and
# resampling dominate and sending the bytes over costs more than the parallel import saves.
MAX_JOB_BYTES = 4 * 1024 * 1024
SETTINGS_FILE = "mlops-ci.yaml"  # settings.SETTINGS_FILE, named here without loading YAML
# `predictions:` set to something in a settings file: a hint only, the baseline's policy decides.
_PREDICTIONS = re.compile(rb"^predictions:[ \t]*([^ \t\r\n].*)?$", re.MULTILINE)
_NOTHING = re.compile(rb"(null|~|#.*)?[ \t\r]*")


def wanted(repo_dir: Path) -> bool:
    """Whether the project in `repo_dir` looks like it has predictions to bootstrap: its
    settings file names them (read raw, before any YAML module loads)."""
    try:
        with open(repo_dir / SETTINGS_FILE, "rb") as fh:
            text = fh.read(1024 * 1024)
    except OSError:
        return False
    return any(
        not _NOTHING.fullmatch(found.group(1) or b"") for found in _PREDICTIONS.finditer(text)
    )


def usable(env: Mapping[str, str] | None = None) -> bool:
    """Whether forking a helper here is safe and can save time."""
    env = os.environ if env is None else env
    return (
        sys.platform == "linux"
        and env.get("MLOPS_CI_PREFORK", "1") != "0"
        and "numpy" not in sys.modules
        and threading.active_count() == 1  # a fork of a threaded process can deadlock
        and len(os.sched_getaffinity(0)) > 1
    )


class Helper:
    """One forked child for one job: `Helper.start()` forks (None when it should not),
    `submit(fn, *args)` hands the job over and gives a call that waits for its result (`run`
    does both at once), `close()` reaps the child."""

    def __init__(self, pid: int, to_child: int, from_child: int) -> None:
        self.pid, self.to_child, self.from_child = pid, to_child, from_child
        self.closed = False

    @classmethod
    def start(cls, preload: tuple[str, ...] = PRELOAD) -> Helper | None:
        if not usable():
            return None
        sys.stdout.flush()
        sys.stderr.flush()
        job_r, job_w = os.pipe()
        result_r, result_w = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            for fd in (job_r, job_w, result_r, result_w):
                os.close(fd)
            return None
        if pid == 0:  # the child: never returns
            os.close(job_w)
            os.close(result_r)
            _serve(job_r, result_w, preload)
        os.close(job_r)
        os.close(result_w)
        return cls(pid, job_w, result_r)

    def run(self, fn: Callable[..., _T], *args: Any) -> _T:
        """`fn(*args)`, computed by the helper; in this process when the helper cannot."""
        return self.submit(fn, *args)()

    def submit(self, fn: Callable[..., _T], *args: Any) -> Callable[[], _T]:
        """Hand `fn(*args)` to the helper now; the returned call waits for its result (or
        computes it here when the helper cannot)."""
        try:
            job: bytes | None = pickle.dumps((fn, args), pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError):
            job = None
        sent = job is not None and self._send(job)

        def result() -> _T:
            try:
                answer = self._receive() if sent else None
            finally:
                self.close()
            return answer[0] if answer is not None else fn(*args)

        return result

    def _send(self, job: bytes) -> bool:
        try:
            with open(self.to_child, "wb", closefd=False) as out:
                out.write(job)
        except OSError:  # the child is gone
            return False
        finally:
            os.close(self.to_child)
            self.to_child = -1
        return True

    def _receive(self) -> tuple[Any] | None:
        try:
            with open(self.from_child, "rb", closefd=False) as inp:
                reply = inp.read()
            status, value = pickle.loads(reply) if reply else ("lost", None)  # noqa: S301 - our child
        except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError):
            return None
        return (value,) if status == "ok" else None

    def close(self) -> None:
        """Close the pipes (a child still waiting then exits) and reap the child."""
        if self.closed:
            return
        self.closed = True
        for fd in (self.to_child, self.from_child):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)


@contextlib.contextmanager
def helper(wanted: bool) -> Iterator[Helper | None]:
    """A helper for the block when `wanted` and usable, reaped when the block ends."""
    started = Helper.start() if wanted else None
    try:
        yield started
    finally:
        if started is not None:
            started.close()


def _serve(job_fd: int, result_fd: int, preload: tuple[str, ...]) -> None:
    """The child's whole life: load, wait for one job, answer, and leave without the parent's
    exit handlers or buffered output."""
    code = 0
    try:
        for name in preload:
            importlib.import_module(name)
        with open(job_fd, "rb") as inp:
            job = inp.read()
        if job:
            fn, args = pickle.loads(job)  # noqa: S301 - from our own parent
            try:
                reply = pickle.dumps(("ok", fn(*args)), pickle.HIGHEST_PROTOCOL)
            except Exception:  # the parent reruns the job and raises the error for the user
                reply = pickle.dumps(("raised", None))
            with open(result_fd, "wb") as out:
                out.write(reply)
    except BaseException:  # a child must end here, whatever happened
        code = 1
    finally:
        os._exit(code)
