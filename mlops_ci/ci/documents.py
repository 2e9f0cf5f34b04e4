"""Run-directory documents: the JSON that crosses process and trust boundaries (docs/documents.md)."""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mlops_ci import __version__
from mlops_ci.ci.untrusted.inventory import entry_point
from mlops_ci.project.errors import ConfigError, OutputNotWritten

SCHEMA_VERSION = 1
MAX_DEPTH = 32  # deeper than any document mlops-ci writes; deeper input is refused, not recursed


def now() -> str:
    """The current UTC time as the documents write it (ISO 8601, whole seconds)."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def header(kind: str) -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "kind": kind, "tool_version": __version__}


# Documents up to this size are indented for people; larger ones stay compact: indenting takes
# json's pure-Python encoder (about 10x slower) and a third more bytes for no reader.
PRETTY_UP_TO_BYTES = 16 * 1024


# What the machine, not the input, refuses: a full disk or quota, a read-only file system, no
# permission. Said as exit 3 naming the file; anything else stays the error it is.
ENVIRONMENT_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}
)


@contextlib.contextmanager
def writing(path: Path) -> Iterator[None]:
    """Around writing `path`: OutputNotWritten (exit 3) naming it when the disk is full or
    read-only or the file not ours to write."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in ENVIRONMENT_ERRNOS:
            raise
        raise OutputNotWritten(
            f"cannot write {path}: {os.strerror(exc.errno or 0)}; free space or choose a "
            "writable --run-dir, then run the command again"
        ) from exc


def write(run_dir: Path, name: str, data: dict[str, Any]) -> Path:
    """Write atomically, so a reader never sees half a document (and a full disk leaves the
    previous one whole)."""
    path = run_dir / name
    text = json.dumps(data, separators=(",", ":"), default=str, allow_nan=False)
    if len(text) <= PRETTY_UP_TO_BYTES:
        text = json.dumps(data, indent=2, default=str, allow_nan=False)
    with writing(path):
        run_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=run_dir, prefix=f".{name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.write("\n")
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    return path


def write_text(run_dir: Path, name: str, text: str) -> Path:
    path = run_dir / name
    with writing(path):
        run_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return path


def write_file(path: Path, text: str) -> Path:
    """A text output outside the run directory's documents (`--output`), errors as `write`."""
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return path


# The command that writes each kind: what an error about a missing or stale document suggests.
WRITER = {
    "train": "train",
    "comparison": "compare",
    "verdict": "gate",
    "leaderboard": "sweep collect",
}
REPORT_FILE = "report.md"  # the full report; its name is what jobs, summaries and outputs point at


def check(
    data: Any, kind: str, source: str, error: type[Exception] = ConfigError
) -> dict[str, Any]:
    """`data` as a document of `kind` at this schema version, else `error` saying what to rerun."""
    command = f"`mlops-ci {WRITER.get(kind, kind)}`"
    if not isinstance(data, dict) or data.get("kind") != kind:
        found = data.get("kind") if isinstance(data, dict) else type(data).__name__
        raise error(f"{source} is not a {kind} document (kind: {found!r}); run {command} first")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise error(
            f"{source} has schema_version {data.get('schema_version')!r}; this mlops-ci reads "
            f"version {SCHEMA_VERSION}: rerun {command} with this version"
        )
    return data


def digest(data: bytes) -> str:
    """`sha256:<hex>` of the bytes of a document: what another document records as its input."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def file_digest(path: Path) -> str | None:
    """The digest of a file in the run directory, None when it does not exist."""
    try:
        return digest(path.read_bytes())
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Two parsers may disagree on which duplicate wins; refuse the ambiguity instead.
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key[:80]!r}")
        result[key] = value
    return result


def depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """How deeply `value` nests: 1 for a scalar, one more per container level (iteratively,
    a level at a time; stops counting once past `limit`). Only containers are carried to the
    next level, so a document of many numbers costs one type check each."""
    level, layer = 1, [value]
    while True:
        if level > limit:
            return level
        below: list[Any] = []
        has_items = False
        for item in layer:
            items = item.values() if isinstance(item, dict) else item
            if items and isinstance(item, dict | list):
                has_items = True
                below += [v for v in items if isinstance(v, dict | list)]
        if not below:
            return level + 1 if has_items else level
        layer, level = below, level + 1


_LONG_DIGITS = re.compile(r"\d{300}")  # float's range ends near 1.8e308


def loads_strict(raw: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """JSON as a gate can trust it: UTF-8, no NaN/Infinity, no duplicate keys, bounded nesting.

    Raises ValueError (UnicodeDecodeError is one) with what is wrong; never RecursionError.
    Numbers too large for a float (`1e400`, a 400-digit integer) are read as infinity: the
    gate refuses those as values it cannot judge, and every `float()` downstream still works.
    """
    text = raw.decode("utf-8")
    # 400 digits would overflow every float() downstream; only a document with such a run of
    # digits pays for a Python call per integer (a regex scan costs far less than the calls).
    parse_int = _int_or_inf if _LONG_DIGITS.search(text) else None
    try:
        data = json.loads(
            text,
            parse_constant=_reject_constant,
            object_pairs_hook=_no_duplicates,
            parse_int=parse_int,
        )
    except RecursionError as exc:
        raise ValueError(f"nests deeper than {max_depth} levels") from exc
    if depth(data, max_depth) > max_depth:
        raise ValueError(f"nests deeper than {max_depth} levels")
    return data


@entry_point("a metrics or params file's bytes at a revision")
def parse_bounded(
    path: str, raw: bytes, parse: Callable[[str, bytes], Any], max_depth: int = 64
) -> Any:
    """`parse(path, raw)` (a metrics or params parser) made safe for the gate.

    For `snapshot`: a file nested 5000 levels deep is a ValueError naming it (not a
    RecursionError, exit 4), and an integer too large for a float (`10**400`) becomes
    infinity, so every later `float()` works and the gate sees a value it cannot judge.
    """
    try:
        data = parse(path, raw)
    except RecursionError as exc:
        raise ValueError(f"{path} nests deeper than {max_depth} levels") from exc
    if depth(data, max_depth) > max_depth:
        raise ValueError(f"{path} nests deeper than {max_depth} levels")
    return _finite_ints(data)


def _int_or_inf(text: str) -> int | float:
    value = int(text)
    return value if abs(value) < 2**1023 else float("inf") if value > 0 else float("-inf")


def _finite_ints(data: Any) -> Any:
    # YAML and TOML integers beyond a float's range, as JSON's are in `_int_or_inf`.
    if isinstance(data, bool):
        return data
    if isinstance(data, int):
        return _int_or_inf(str(data)) if abs(data) >= 2**1023 else data
    if isinstance(data, dict):
        return {k: _finite_ints(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_finite_ints(v) for v in data]
    return data


def _read(run_dir: Path, name: str, kind: str | None, required: bool) -> tuple[Any, str | None]:
    path = run_dir / name
    if not path.exists():
        if not required:
            return None, None
        hint = f"run `mlops-ci {WRITER.get(kind, kind)}` first" if kind else "check --run-dir"
        raise ConfigError(f"{path} does not exist; {hint}")
    try:
        raw = path.read_bytes()
        data = loads_strict(raw)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} is not valid JSON: {str(exc)[:300]}") from exc
    if kind:
        return check(data, kind, str(path)), digest(raw)
    if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
        raise ConfigError(
            f"{path} is not a document of this mlops-ci (schema_version {SCHEMA_VERSION})"
        )
    return data, digest(raw)


def read(run_dir: Path, name: str, *, kind: str | None = None, required: bool = True) -> Any:
    """Read a document, checking its kind and schema version; None when absent and optional."""
    return _read(run_dir, name, kind, required)[0]


def read_digested(
    run_dir: Path, name: str, *, kind: str | None = None, required: bool = True
) -> tuple[Any, str | None]:
    """`read`, with the digest of the very bytes that were parsed (None when absent)."""
    return _read(run_dir, name, kind, required)


def stale_input(document: Any, name: str, current: str | None) -> str | None:
    """Why `document` (verdict.json, ...) does not belong to the current `name`, or None.

    A document that records no digest of `name` cannot show it was computed from it: stale.
    """
    inputs = document.get("inputs") if isinstance(document, dict) else None
    recorded = inputs.get(name) if isinstance(inputs, dict) else None
    if recorded is None:
        return f"it records no digest of {name}"
    if recorded != current:
        return f"it was computed from {name} {str(recorded)[:19]}…, not the current {str(current)[:19]}…"
    return None
