"""`mlops-ci train`: reproduce the pipeline, say per stage whether it ran, was restored or unchanged."""

from __future__ import annotations

import collections
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from mlops_ci import __version__
from mlops_ci.ci import documents
from mlops_ci.ci.tokens import WRITE_TOKEN_VARIABLES, without_write_tokens
from mlops_ci.project.dvc import StageRun, configure_remote, open_repo, pipeline_stages, reproduce
from mlops_ci.project.dvc import push as dvc_push
from mlops_ci.project.dvcfile import DEFAULT_PARAMS_FILE
from mlops_ci.project.errors import (
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
    EXIT_SERVICE,
    EXIT_UNEXPECTED,
    ConfigError,
    MlopsCiError,
    ServiceError,
    StageFailed,
)
from mlops_ci.project.git import Git
from mlops_ci.project.settings import load_settings

TAIL_LINES = 30


@dataclass
class TrainResult:
    stages: list[StageRun]
    duration_s: float
    repo_sha: str | None
    pulled: bool = False
    pushed: bool = False
    error: str | None = None
    tail: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = documents.header("train") | {
            "repo_sha": self.repo_sha,
            "pulled": self.pulled,
            "pushed": self.pushed,
            "duration_s": round(self.duration_s, 3),
            "stages": [s.to_dict() for s in self.stages],
        }
        if self.error:
            data["error"] = self.error
            data["output_tail"] = self.tail
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainResult:
        """The result `to_dict` wrote (train.json, or `train --json`)."""
        stages = [
            StageRun(
                str(s["name"]), str(s["status"]), float(s.get("duration_s") or 0.0), s.get("source")
            )
            for s in data.get("stages") or []
        ]
        return cls(
            stages=stages, duration_s=float(data.get("duration_s") or 0.0),
            repo_sha=data.get("repo_sha"), pulled=bool(data.get("pulled")),
            pushed=bool(data.get("pushed")), error=data.get("error"),
            tail=list(data.get("output_tail") or []),
        )  # fmt: skip

    def counts(self) -> dict[str, int]:
        return dict(collections.Counter(s.status for s in self.stages))


class _Tail:
    """The last lines written to stdout/stderr since the current stage started."""

    def __init__(self, keep: int) -> None:
        self.lines: collections.deque[str] = collections.deque(maxlen=keep)
        self._partial = b""

    def feed(self, chunk: bytes) -> None:
        data = self._partial + chunk
        *complete, self._partial = data.split(b"\n")
        for raw in complete:
            self.lines.append(raw.decode("utf-8", "replace").rstrip("\r"))

    def reset(self) -> None:
        self.lines.clear()
        self._partial = b""

    def snapshot(self) -> list[str]:
        extra = [self._partial.decode("utf-8", "replace")] if self._partial else []
        return [*self.lines, *extra]


@contextmanager
def _tee_output(echo: TextIO, keep: int = TAIL_LINES) -> Iterator[_Tail]:
    """Route fds 1 and 2 (ours and the stage subprocesses') through a pipe.

    Everything is echoed live to `echo` and the tail is kept, so a failing stage's message can
    quote what the stage printed. With --json, `echo` is stderr and stdout stays clean.
    """
    tail = _Tail(keep)
    try:
        echo_fd = os.dup(echo.fileno())
    except (AttributeError, OSError, ValueError):
        # No real file behind `echo` (an embedding without fds): no capture, no tail.
        yield tail
        return
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    read_fd, write_fd = os.pipe()
    saved = [os.dup(1), os.dup(2)]
    os.dup2(write_fd, 1)
    os.dup2(write_fd, 2)
    os.close(write_fd)

    def pump() -> None:
        with os.fdopen(read_fd, "rb", buffering=0) as reader:
            while chunk := reader.read(65536):
                tail.feed(chunk)
                os.write(echo_fd, chunk)

    thread = threading.Thread(target=pump, name="mlops-ci-tee", daemon=True)
    thread.start()
    try:
        yield tail
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
        thread.join(timeout=10)
        os.close(echo_fd)


def parse_overrides(overrides: Sequence[str]) -> dict[str, list[str]]:
    """`[file:]key=value` (as `dvc exp run -S`) grouped by params file (default params.yaml)."""
    by_file: dict[str, list[str]] = {}
    for item in overrides:
        target, sep, value = item.partition("=")
        if not sep or not target.strip():
            raise ConfigError(f"--set {item!r}: write KEY=VALUE, e.g. train.seed=7")
        path, colon, key = target.rpartition(":")
        if not colon:
            path, key = DEFAULT_PARAMS_FILE, target
        by_file.setdefault(path, []).append(f"{key.strip()}={value}")
    return by_file


def _params_file(repo_dir: Path, path: str) -> Path:
    """`path` as a params file inside the repository; nothing outside it is ever edited
    (`../x.yaml`, an absolute path, or a symlink out of the repository)."""
    if Path(path).is_absolute():
        raise ConfigError(
            f"--set {path}:...: the params file must be a path inside the repository, relative "
            "to its root, not an absolute path outside the repository"
        )
    root = repo_dir.resolve()
    file = (root / path).resolve()
    if not file.is_relative_to(root):
        raise ConfigError(
            f"--set {path}:...: {path} is outside the repository ({root}); name a params file "
            "inside it, relative to its root"
        )
    if not file.is_file():
        raise ConfigError(f"--set: the params file {path} does not exist")
    return file


def apply_overrides(repo_dir: Path, overrides: Sequence[str]) -> None:
    """Change params files the way `dvc exp run -S` does (DVC's own code: comments survive)."""
    from dvc.exceptions import DvcException
    from dvc.utils.hydra import apply_overrides as dvc_apply

    for path, items in parse_overrides(overrides).items():
        file = _params_file(repo_dir, path)
        try:
            dvc_apply(file, items)
        except DvcException as exc:
            raise ConfigError(
                f"--set {', '.join(items)}: {exc}; a key {path} does not have yet needs a "
                "leading + (e.g. +train.new_option=1)"
            ) from exc


def run_train(
    repo_dir: Path,
    run_dir: Path,
    *,
    pull: bool = False,
    push: bool = False,
    overrides: Sequence[str] = (),
    stage_output: TextIO | None = None,
    env: Mapping[str, str] | None = None,
) -> TrainResult:
    """Reproduce the pipeline at `repo_dir` and write `<run_dir>/train.json`.

    `overrides` change params first (a sweep candidate); with `remote:` in mlops-ci.yaml (or
    MLOPS_CI_REMOTE_URL) the clone is pointed at that shared remote for --pull and --push.
    """
    env = os.environ if env is None else env
    git = Git(repo_dir)
    git.toplevel()  # a clear error outside a git repository, before DVC says anything
    if push and _is_fork(env):
        raise ConfigError(
            "refusing --push from a pull request of a fork: its code is untrusted and must not "
            "fill the shared run-cache; push from the base repository's own runs only"
        )
    from mlops_ci.ci.event import forge_kind, read_ci_event, write_ci_metadata

    if forge_kind(env) != "local":
        # The trusted half of a fork PR posts from this record, whichever path trained: `pr`
        # or the separate actions (written first, so a failing stage still leaves it).
        write_ci_metadata(run_dir, read_ci_event(env, run_dir))
    if overrides:
        apply_overrides(repo_dir, overrides)
    start = time.perf_counter()
    result = TrainResult(stages=[], duration_s=0.0, repo_sha=git.head_sha(), pulled=pull)
    with open_repo(repo_dir) as repo:
        if pull or push:
            configure_remote(repo, load_settings(repo_dir).remote, env)
        progress = _StageProgress(stage_output or sys.stdout)
        try:
            with _tee_output(stage_output or sys.stdout) as tail:

                def started(name: str) -> None:
                    tail.reset()
                    progress.start(name)

                runs = reproduce(
                    repo, hidden=WRITE_TOKEN_VARIABLES, pull=pull, on_stage_start=started
                )
                progress.finish()
        except StageFailed as exc:
            progress.finish("failed after")
            # Only a failure needs the plan (to list what never ran): building DVC's graph
            # costs a parse of every dvc.yaml and dvc.lock, which a success never pays.
            result.stages = _with_skipped(exc.runs, pipeline_stages(repo))
            result.duration_s = time.perf_counter() - start
            result.error = str(exc)
            result.tail = tail.snapshot()
            documents.write(run_dir, "train.json", result.to_dict())
            if _interrupted(exc):
                # Ctrl-C reached the stage too (one process group): DVC ignores SIGINT while
                # a stage runs and reports only the stage's exit, so this is the user's stop.
                raise KeyboardInterrupt from exc
            shown = "\n".join(f"  | {line}" for line in result.tail[-TAIL_LINES:])
            raise StageFailed(
                f"{exc}\nlast lines of its output:\n{shown}\n"
                f"Stages that finished keep their outputs; fix the stage and {RERUN}."
            ) from exc
        result.stages = runs  # DVC called back for every stage of the graph, in run order
        _append_step_summary(env, result)
        if push:
            dvc_push(repo)
            result.pushed = True
    result.duration_s = time.perf_counter() - start
    documents.write(run_dir, "train.json", result.to_dict())
    return result


# The CLI's last word on a failure (cli._dispatch): the parent raises it again, once.
RERUN = "rerun `mlops-ci train`"
_FAILURE_PREFIXES = ("mlops-ci train: error: ", "mlops-ci train: unexpected error: ")


def run_train_process(
    repo_dir: Path,
    run_dir: Path,
    *,
    pull: bool = False,
    push: bool = False,
    overrides: Sequence[str] = (),
    stage_output: TextIO | None = None,
    env: Mapping[str, str] | None = None,
    meanwhile: Callable[[], object] | None = None,
    command: str = "train",
) -> TrainResult:
    """`run_train` in a child process, which gets no write token, calling `meanwhile` while
    the stages run. `command`: the mlops-ci command a failure tells the user to rerun.

    DVC's modules (about 60 MiB) then never share a process with what comes next (numpy, the
    report's templates): a pull request job's peak memory is the larger of the two, as for
    `dvc repro` followed by `dvc metrics diff`, not their sum, and the parent loads its own
    modules while the stages run. A failure comes back as the error the child reported, with
    its exit code.
    """
    env = os.environ if env is None else env
    out = stage_output or sys.stdout
    cmd = [sys.executable, "-m", "mlops_ci.cli", "train", "--json", "-C", str(repo_dir),
           "--run-dir", str(run_dir)]  # fmt: skip
    cmd += ["--pull"] * pull + ["--push"] * push
    cmd += [arg for item in overrides for arg in ("--set", item)]
    child_env = without_write_tokens({**os.environ, **env})
    for stream in (sys.stdout, sys.stderr, out):
        stream.flush()
    (run_dir / "train.json").unlink(missing_ok=True)  # what the child writes, or nothing
    proc = subprocess.Popen(
        cmd, env=child_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=repo_dir
    )
    failure: list[str] = []
    document: list[bytes] = []

    def relay() -> None:  # progress (stderr under --json) to `out`, as it happens
        assert proc.stderr is not None
        for raw in iter(proc.stderr.readline, b""):
            line = raw.decode("utf-8", "replace")
            if failure or line.startswith(_FAILURE_PREFIXES):
                failure.append(line)
                continue
            out.write(line)
            out.flush()

    relay_thread = threading.Thread(target=relay, name="mlops-ci-train-log", daemon=True)
    relay_thread.start()
    reader = threading.Thread(
        target=lambda: document.append(proc.stdout.read() if proc.stdout else b""),
        name="mlops-ci-train-result", daemon=True,
    )  # fmt: skip
    reader.start()
    try:
        if meanwhile is not None:
            meanwhile()
        code = proc.wait()
    except BaseException:
        proc.wait()  # Ctrl-C reached the child too (one process group): let it stop
        raise
    finally:
        reader.join()
        relay_thread.join()
    if code == 0:
        return TrainResult.from_dict(json.loads(b"".join(document)))
    said = "".join(failure).replace(RERUN, RERUN.replace("train", command))
    raise _child_failure(code, said, run_dir)


def _child_failure(code: int, said: str, run_dir: Path) -> BaseException:
    """The child's failure as the error `run_train` would have raised in this process."""
    if code == EXIT_INTERRUPTED:
        return KeyboardInterrupt()
    message = said
    for prefix in _FAILURE_PREFIXES:
        message = message.removeprefix(prefix)
    message = message.rstrip() or f"training exited with {code} and said nothing"
    if code < 0:
        message = f"training was killed by signal {-code}"
    recorded = None
    if code > 0:
        with contextlib.suppress(MlopsCiError):  # no readable record: the message says it all
            recorded = documents.read(run_dir, "train.json", required=False)
    if isinstance(recorded, dict) and recorded.get("error"):  # a stage failed (train.json)
        failed = StageFailed(message)
        result = TrainResult.from_dict(recorded)
        failed.runs = result.stages
        failed.stage = next((s.name for s in result.stages if s.status == "failed"), None)
        return failed
    error = ServiceError(message) if code == EXIT_SERVICE else MlopsCiError(message)
    error.exit_code = code if code in (EXIT_BAD_INPUT, EXIT_SERVICE) else EXIT_UNEXPECTED
    return error


class _StageProgress:
    """One line per stage started and finished, with seconds, in the job log as it happens.

    DVC calls back only when a stage starts: a stage has finished when the next one starts, or
    when the reproduction returns."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.current: tuple[str, float] | None = None

    def _say(self, line: str) -> None:
        self.out.write(f"mlops-ci: {line}\n")
        self.out.flush()

    def start(self, name: str) -> None:
        self.finish()
        self.current = (name, time.perf_counter())
        self._say(f"stage {name} started")

    def finish(self, how: str = "finished in") -> None:
        if self.current is not None:
            name, began = self.current
            self._say(f"stage {name} {how} {time.perf_counter() - began:.2f} s")
            self.current = None


def _append_step_summary(env: Mapping[str, str], result: TrainResult) -> None:
    """The stage table in the GitHub job summary, before the report a later step adds."""
    path = env.get("GITHUB_STEP_SUMMARY", "").strip()
    if not path or not result.stages:
        return
    from mlops_ci.report.markdown import md_text

    rows = [
        f"| {md_text(s.name)} | {s.status}{f' ({s.source})' if s.source else ''} "
        f"| {s.duration_s:.2f} |"
        for s in result.stages
    ]
    text = "\n".join(
        ["#### Stages", "", "| stage | status | seconds |", "|---|---|---:|", *rows, "", ""]
    )
    # A summary that cannot be written loses no result.
    with contextlib.suppress(OSError), open(path, "a", encoding="utf-8") as handle:
        handle.write(text)


# How a stage killed by SIGINT exits: -2 when DVC sees the signal, 130 through a shell.
_SIGINT_EXITS = (f"exited with {-signal.SIGINT}", f"exited with {128 + signal.SIGINT}")


def _interrupted(exc: BaseException) -> bool:
    """Whether the failing stage was stopped by SIGINT (Ctrl-C), from DVC's own error."""
    from dvc.stage.exceptions import StageCmdFailedError

    seen: BaseException | None = exc
    for _ in range(16):  # a chain is short; the bound guards against a cycle
        if seen is None:
            break
        if isinstance(seen, KeyboardInterrupt):
            return True
        if isinstance(seen, StageCmdFailedError) and str(seen).endswith(_SIGINT_EXITS):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _is_fork(env: Mapping[str, str]) -> bool:
    from mlops_ci.ci.event import read_ci_event

    return read_ci_event(env).is_fork


def _with_skipped(runs: list[StageRun], planned: list[str]) -> list[StageRun]:
    seen = {r.name for r in runs}
    return runs + [StageRun(name, "skipped") for name in planned if name not in seen]


def format_stage_table(result: TrainResult) -> str:
    """The stage table printed by `mlops-ci train`."""
    width = max([len("stage"), *(len(s.name) for s in result.stages)])
    lines = [f"{'stage':<{width}}  {'status':<24}  duration"]
    for stage in result.stages:
        status = stage.status + (f" ({stage.source})" if stage.source else "")
        lines.append(f"{stage.name:<{width}}  {status:<24}  {stage.duration_s:7.2f} s")
    counts = result.counts()
    summary = ", ".join(f"{counts[k]} {k}" for k in ("ran", "restored", "unchanged") if k in counts)
    lines.append(f"{summary or 'no stages'} in {result.duration_s:.2f} s (mlops-ci {__version__})")
    if result.pushed:
        lines.append("pushed outputs and run-cache to the DVC remote")
    return "\n".join(lines)
