"""What mlops-ci hands back to the CI runner: step outputs, env for later steps, masked values.

The composite actions in `actions/` stay thin: a step runs a command, then
`python -I -m mlops_ci.ci.output outputs --run-dir DIR` turns the documents in the run
directory into step outputs. `-I` keeps the working directory off `sys.path`: a user repository
may hold its own `mlops_ci/` folder (the reference project's stage code does), which would
otherwise shadow the installed package. Action inputs reach Python only as `MLOPS_CI_INPUT_<NAME>` environment
variables (never as `${{ }}` pasted into a script, which is a script-injection hole).

GitHub reads `$GITHUB_OUTPUT` and `$GITHUB_ENV` as `name<<DELIMITER` heredocs; the delimiter is
random per value so a value that contains a line equal to it cannot end the block early and
smuggle in more outputs (the same reason actions/toolkit uses a UUID).

The runner also reads every log line for workflow commands (actions/runner,
`ActionCommandManager`): a line that starts with `::name` after leading whitespace
(`TryParseV2`), or holds `##[name` anywhere (the legacy `TryParse`), where a line ends at `\n`,
`\r` or `\r\n`. A metric name, branch or commit subject that reaches the log could thus mask
values, stop command processing or fake annotations. So our own commands are built by
`workflow_command` (the toolkit's escaping) and written with `write_command`, and everything else
goes through `guard_streams`, which defuses such lines with a zero-width space.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from mlops_ci.project.errors import ConfigError

INPUT_PREFIX = "MLOPS_CI_INPUT_"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def input_env_name(name: str) -> str:
    """`fetch-baseline` → `MLOPS_CI_INPUT_FETCH_BASELINE` (how actions pass their inputs)."""
    return INPUT_PREFIX + name.upper().replace("-", "_")


def read_input(name: str, default: str = "", environ: Mapping[str, str] | None = None) -> str:
    """The value of action input `name` as passed through the environment, stripped."""
    env = os.environ if environ is None else environ
    value = env.get(input_env_name(name), "").strip()
    return value or default


def format_heredoc(name: str, value: str) -> str:
    """One `name<<DELIM` block; DELIM is random and checked not to occur in the value."""
    if not _NAME.match(name):
        raise ConfigError(f"{name!r} is not a valid output or variable name")
    import secrets  # lazy: hmac and hashlib cost more than the rest of this module

    while True:
        delimiter = f"ghadelimiter_{secrets.token_hex(16)}"
        if delimiter not in value:
            break
    return f"{name}<<{delimiter}\n{value}\n{delimiter}\n"


def _append(path: str | os.PathLike[str], values: Mapping[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        for name, value in values.items():
            fh.write(format_heredoc(name, _as_text(value)))


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        import json

        return json.dumps(value, separators=(",", ":"))
    return str(value)


def write_outputs(
    values: Mapping[str, Any], environ: Mapping[str, str] | None = None, out: IO[str] | None = None
) -> bool:
    """Append step outputs to `$GITHUB_OUTPUT`; returns False (and writes nothing) outside
    GitHub Actions, so commands can call it unconditionally."""
    env = os.environ if environ is None else environ
    path = env.get("GITHUB_OUTPUT")
    if not path:
        return False
    _append(path, values)
    if out is not None:
        for name, value in values.items():
            out.write(f"output {name}={_as_text(value)[:200]}\n")
    return True


def export_env(values: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> bool:
    """Set environment variables for the later steps of the job (`$GITHUB_ENV`)."""
    env = os.environ if environ is None else environ
    path = env.get("GITHUB_ENV")
    if not path:
        return False
    _append(path, values)
    return True


def mask(value: str, out: IO[str] | None = None) -> None:
    """Ask the runner to hide `value` in logs, line by line (the runner matches lines)."""
    stream = out or sys.stdout
    for line in value.splitlines():
        if line.strip():
            write_command(stream, workflow_command("add-mask", line))


# --- workflow commands and the log ------------------------------------------------------------

ZWSP = "\u200b"  # not whitespace to .NET's TrimStart, so it breaks `::` and `##[` invisibly
_LINE_BREAK = re.compile(r"(\r\n|\r|\n)")
_LEGACY = re.compile(r"##(?=\[)")


def escape_data(text: str) -> str:
    """A command's message, as actions/toolkit escapes it: one line whatever it holds."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A command's property value (`title=...`): also no `:` or `,` that would end it."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def workflow_command(command: str, message: str = "", **properties: str | None) -> str:
    """`::command k=v,...::message`, escaped, e.g. `workflow_command("error", why, title=t)`."""
    props = ",".join(f"{k}={escape_property(v)}" for k, v in properties.items() if v is not None)
    return f"::{command}{' ' + props if props else ''}::{escape_data(message)}"


def _is_blank(text: str) -> bool:
    # .NET's char.IsWhiteSpace, as TrimStart uses it; U+180E was whitespace in older Unicode.
    return all(c.isspace() or c == "\u180e" for c in text)


class CommandSafeStream:
    """A text stream whose lines the runner takes for no workflow command.

    A line that would start with `::` gets a ZWSP between the colons, and every `##[` gets one
    before the bracket; the visible text is the same. Writes may split a line anywhere, so the
    stream remembers how the current line began and its last two characters.
    """

    def __init__(self, stream: IO[str]):
        self.command_stream = stream  # where `write_command` writes our own commands
        self._lead = "blank"  # the line so far: "blank", "colon" (blank + ':'), or "text"
        self._tail = ""  # its last two characters

    def write(self, text: str) -> int:
        self.command_stream.write(self._defuse(text))
        return len(text)

    def writelines(self, lines: Sequence[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self.command_stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.command_stream, name)  # fileno, isatty, encoding, buffer...

    @property
    def mid_line(self) -> bool:
        return self._lead != "blank" or bool(self._tail)

    def _defuse(self, text: str) -> str:
        out = []
        for part in _LINE_BREAK.split(text):
            if _LINE_BREAK.fullmatch(part):
                self._lead, self._tail = "blank", ""
                out.append(part)
            elif part:
                part = self._defuse_start(part)
                joined = _LEGACY.sub("##" + ZWSP, self._tail + part)
                part = joined[len(self._tail) :]
                self._tail = (self._tail + part)[-2:]
                out.append(part)
        return "".join(out)

    def _defuse_start(self, part: str) -> str:
        if self._lead == "colon":
            self._lead = "text"
            return ZWSP + part if part.startswith(":") else part
        if self._lead != "blank":
            return part
        rest = part
        while rest and _is_blank(rest[0]):
            rest = rest[1:]
        head = part[: len(part) - len(rest)]
        if rest.startswith("::"):
            self._lead = "text"
            return head + ":" + ZWSP + rest[1:]
        self._lead = "colon" if rest == ":" else "blank" if not rest else "text"
        return part


def inert_log(text: str) -> str:
    """`text` with no line the runner would take for a workflow command."""
    return CommandSafeStream(sys.stdout)._defuse(text)


def json_for_log(text: str) -> str:
    """JSON text (`json.dumps`) that the guard leaves as it is: `##[` can only occur inside a
    string, where `\\u005b` is the same `[`, so the document parses to the same value."""
    return text.replace("##[", "##\\u005b")


def write_command(stream: IO[str] | CommandSafeStream, line: str) -> None:
    """Write one of our own workflow commands (built by `workflow_command`) on a line of its
    own, past the guard of `guard_streams`."""
    raw = stream.command_stream if isinstance(stream, CommandSafeStream) else stream
    if isinstance(stream, CommandSafeStream) and stream.mid_line:
        stream.write("\n")
    raw.write(line + "\n")
    raw.flush()


@contextlib.contextmanager
def guard_streams(environ: Mapping[str, str] | None = None) -> Iterator[None]:
    """In GitHub Actions, make sys.stdout and sys.stderr `CommandSafeStream`s meanwhile."""
    env = os.environ if environ is None else environ
    if env.get("GITHUB_ACTIONS") != "true" or isinstance(sys.stdout, CommandSafeStream):
        yield
        return
    saved = sys.stdout, sys.stderr
    sys.stdout = CommandSafeStream(saved[0])  # type: ignore[assignment]
    sys.stderr = CommandSafeStream(saved[1])  # type: ignore[assignment]
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        sys.stdout, sys.stderr = saved


# --- outputs derived from the run directory ------------------------------------------------


def _load(path: Path) -> dict[str, Any] | None:
    try:
        import json

        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def verdict_outputs(verdict: dict[str, Any]) -> dict[str, str]:
    """`verdict`, `summary` and `failed-rules` (`metric:rule,...`) of a verdict document."""
    rules = verdict.get("rules") if isinstance(verdict.get("rules"), list) else []
    failed = [
        f"{r.get('metric')}:{r.get('rule')}"
        for r in rules
        if isinstance(r, dict) and r.get("outcome") == "fail"
    ]
    return {
        "verdict": str(verdict.get("verdict", "")),
        "summary": str(verdict.get("summary", "")),
        "failed-rules": ",".join(failed),
    }


def outputs_from_run_dir(run_dir: Path) -> dict[str, str]:
    """Step outputs every action documents, read from what the commands wrote.

    Missing documents give empty outputs, so a step after a failed command still sets them.
    """
    from mlops_ci.ci.documents import REPORT_FILE as FULL_NAME

    outputs: dict[str, str] = {"run-dir": str(run_dir)}
    report = run_dir / FULL_NAME
    outputs["report-path"] = str(report) if report.is_file() else ""
    outputs.update(verdict_outputs(_load(run_dir / "verdict.json") or {}))
    comparison = _load(run_dir / "comparison.json") or {}
    metrics = comparison.get("metrics") or []
    counts: dict[str, int] = {}
    for row in metrics if isinstance(metrics, list) else []:
        if isinstance(row, dict):
            status = str(row.get("status", ""))
            counts[status] = counts.get(status, 0) + 1
    outputs["regressed"] = str(counts.get("regressed", 0))
    outputs["improved"] = str(counts.get("improved", 0))
    baseline = comparison.get("baseline") or {}
    outputs["baseline-sha"] = str(baseline.get("sha") or "") if isinstance(baseline, dict) else ""
    train = _load(run_dir / "train.json") or {}
    stages = train.get("stages") or []
    ran = [s for s in stages if isinstance(s, dict) and s.get("status") == "ran"]
    restored = [s for s in stages if isinstance(s, dict) and s.get("status") == "restored"]
    outputs["stages-ran"] = str(len(ran))
    outputs["stages-restored"] = str(len(restored))
    # promote/deploy documents are optional (registry.py and deploy.py write them).
    promotion = _load(run_dir / "promotion.json") or {}
    deployment = _load(run_dir / "deployment.json") or {}
    # The step that ran last speaks: after a deploy (or a rollback's redeploy) the version that
    # is live, after a promote the version just registered.
    latest = deployment if _newer(run_dir / "deployment.json", run_dir / "promotion.json") else {}
    outputs["version"] = str(
        latest.get("version") or promotion.get("version") or deployment.get("version") or ""
    )
    outputs["stage"] = str(promotion.get("stage") or deployment.get("environment") or "")
    outputs["deploy-url"] = str(deployment.get("location") or deployment.get("target") or "")
    # sweep documents (sweep.py): the plan's matrix, and the collected leaderboard's best.
    plan = _load(run_dir / "sweep-plan.json") or {}
    import json

    outputs["matrix"] = json.dumps(plan.get("matrix") or {"include": []}, separators=(",", ":"))
    outputs["count"] = str(len(plan.get("candidates") or []))
    outputs["best"] = str((_load(run_dir / "leaderboard.json") or {}).get("best") or "")
    return outputs


def export_credentials(text: str, out: IO[str] | None = None) -> list[str]:
    """Mask and export `KEY=VALUE` lines (DVC remote credentials given as an action input)."""
    names: list[str] = []
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
            # Never echo the line: it may hold a secret.
            raise ConfigError(
                f"dvc-remote-credentials line {number} is not NAME=VALUE; write one "
                "environment variable per line, e.g. AWS_ACCESS_KEY_ID=..."
            )
        mask(value, out)
        values[name] = value
        names.append(name)
    export_env(values)
    return names


def setup_job(out: IO[str] | None = None) -> dict[str, str]:
    """What the setup action does after installing: later steps use this interpreter, DVC
    telemetry is off, and remote credentials are masked and exported."""
    from mlops_ci import __version__

    stream = out or sys.stdout
    names = export_credentials(read_input("dvc-remote-credentials"), stream)
    exported = {"MLOPS_CI_PYTHON": sys.executable, "DVC_NO_ANALYTICS": "1"}
    # The shared remote reaches every later mlops-ci command, which sets it up for this clone.
    for name, variable in (
        ("dvc-remote-url", "MLOPS_CI_REMOTE_URL"),
        ("dvc-remote-endpoint-url", "MLOPS_CI_REMOTE_ENDPOINT_URL"),
    ):
        if value := read_input(name):
            exported[variable] = value
    export_env(exported)
    values = {"python-path": sys.executable, "mlops-ci-version": __version__}
    write_outputs(values)
    stream.write(f"mlops-ci {__version__} at {sys.executable}\n")
    if names:
        stream.write(f"exported DVC remote credentials: {', '.join(names)}\n")
    return values


def _newer(path: Path, than: Path) -> bool:
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        return False
    try:
        return mtime >= than.stat().st_mtime_ns
    except OSError:
        return True


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m mlops_ci.ci.output outputs|setup` (called by the composite actions)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m mlops_ci.ci.output")
    sub = parser.add_subparsers(dest="what", required=True)
    p_out = sub.add_parser("outputs", help="set step outputs from the run directory's documents")
    p_out.add_argument("--run-dir", default=".mlops-ci")
    p_out.add_argument("--only", nargs="*", default=None, help="output names to set")
    sub.add_parser("setup", help="export the interpreter, DVC settings and credentials")
    args = parser.parse_args(argv)
    with guard_streams():
        try:
            if args.what == "setup":
                setup_job()
                return 0
            values = outputs_from_run_dir(Path(args.run_dir))
            if args.only:
                values = {k: v for k, v in values.items() if k in set(args.only)}
            write_outputs(values, out=sys.stdout)
        except ConfigError as exc:
            write_command(sys.stderr, workflow_command("error", str(exc)))
            return exc.exit_code
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
