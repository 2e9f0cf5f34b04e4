"""Fuzz: hostile or broken `mlops-ci.yaml`, metrics files and run directories.

A seeded generator (the same inputs on every run) makes well over 2,000 inputs:

- `mlops-ci.yaml` texts judged by `mlops-ci gate` (structured policies with random types and
  values, mutated YAML, bytes, deep nesting, duplicate keys);
- `comparison.json` / `verdict.json` run directories read by `gate`, `report` and `publish`
  (NaN, `1e400`, 400-digit integers, wrong types, unknown statuses, errors, bad JSON);
- metrics files read by `compare` (then `gate`) in a real git repository.

Every input must end in exit 0, 1, 2 or 3: never 4 (a bug), a crash, a hang past 10 s or memory
past 500 MB. Most inputs run in-process through `main(argv)` under a 10 s alarm; a sample runs
as real subprocesses with RLIMIT_AS at 500 MB and a 10 s timeout.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops_ci.ci import documents
from mlops_ci.cli import main
from mlops_ci.project.git import Git

pytestmark = pytest.mark.slow  # whole processes on generated inputs

SEED = 13
ALLOWED = {0, 1, 2, 3}
TIME_LIMIT_S = 10
MEMORY_LIMIT = 500 * 1024 * 1024
SHA_A, SHA_B = "a" * 40, "b" * 40


class Hang(BaseException):
    """Raised by the alarm; a BaseException so the CLI's `except Exception` cannot swallow it."""


@dataclass
class Case:
    kind: str
    argv: list[str]
    setup: Callable[[], None]
    label: str


# --- value generators ------------------------------------------------------------------------------

SCALARS: list[Any] = [
    0, 1, -1, 0.5, 0.95, -0.0, 1e-300, 1e300, 10**400, -(10**30), True, False, None, "", "nan",
    "inf", "-Infinity", "0.9", "<script>", "@everyone", "x\n::error::y", "é" * 3, "a" * 600,
    "model#prod", "model@v1", [], {}, [1, 2], {"a": 1},
]  # fmt: skip
RAW_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1" + "0" * 400, "1e-400"]
STATUSES = ["improved", "regressed", "unchanged", "inconclusive", "added", "removed",
            "changed", "unknown", "exploded", None, 7]  # fmt: skip
RULE_KEYS = ["direction", "min", "max", "max_drop", "max_drop_pct", "min_gain", "significant",
             "confidence", "max_dorp"]  # fmt: skip
TOP_KEYS = ["artifact", "target_branch", "baseline", "predictions", "confidence",
            "bootstrap_resamples", "trend_commits", "metrics", "on_missing_metric",
            "on_inconclusive", "promote", "deploy", "remote", "sweep", "intended_use", "typo"]  # fmt: skip
METRICS = ["accuracy", "f1", "latency_ms", "eval/metrics.json:accuracy", "per_class.0.f1"]


def scalar(rng: random.Random) -> Any:
    if rng.random() < 0.5:
        return rng.choice(SCALARS)
    return rng.choice([rng.uniform(-2, 2), rng.randint(-5, 200), rng.random()])


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"k": value}
    return value


def rule(rng: random.Random) -> Any:
    if rng.random() < 0.1:
        return scalar(rng)
    keys = rng.sample(RULE_KEYS, rng.randint(0, 4))
    choices: dict[str, list[Any]] = {
        "direction": ["higher", "lower", "up"],
        "significant": [True, False, "yes"],
        "confidence": [0.95, 0.5, 2, 0.999],
    }
    return {k: rng.choice(choices[k]) if k in choices and rng.random() < 0.8 else scalar(rng)
            for k in keys}  # fmt: skip


def policy_text(rng: random.Random) -> bytes:
    """One `mlops-ci.yaml`: mostly structured (to reach the rules), some mangled or hostile."""
    roll = rng.random()
    if roll < 0.06:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 300)))
    if roll < 0.10:
        depth = rng.choice([40, 200, 5000])
        return b"metrics: " + b"[" * depth + b"]" * depth
    if roll < 0.14:
        return b"metrics:\n  accuracy: {min: 0.9}\n  accuracy: {max_drop: 0.01}\n"
    data: dict[str, Any] = {}
    for key in rng.sample(TOP_KEYS, rng.randint(0, 6)):
        data[key] = scalar(rng)
    if rng.random() < 0.8:
        data["metrics"] = {rng.choice([*METRICS, "default", "rmsee"]): rule(rng)
                           for _ in range(rng.randint(0, 4))}  # fmt: skip
    if rng.random() < 0.3:
        data["promote"] = {"stages": rng.choice([["staging"], ["a#b"], "x", [1]]),
                           "auto": rng.choice([None, "staging", "nope"])}  # fmt: skip
    if rng.random() < 0.2:
        data["sweep"] = {"grid": {"a.b": rng.choice([[1, 2], [], "x", [[1]]])},
                         "max_candidates": scalar(rng)}  # fmt: skip
    text = yaml.safe_dump(data, allow_unicode=True)
    if rng.random() < 0.25:  # mangle: drop or insert characters
        chars = list(text)
        for _ in range(rng.randint(1, 5)):
            pos = rng.randrange(len(chars) + 1)
            if rng.random() < 0.5 and chars:
                del chars[min(pos, len(chars) - 1)]
            else:
                chars.insert(pos, rng.choice(":{}[]-&*!|>'\"#\t\n%@`"))
        text = "".join(chars)
    return text.encode("utf-8", "surrogatepass")


def metric_row(rng: random.Random) -> Any:
    if rng.random() < 0.05:
        return scalar(rng)
    row: dict[str, Any] = {
        "name": rng.choice([*METRICS, "<img src=x>", "x" * 300]),
        "file": rng.choice(["eval/metrics.json", "eval/other.json", None]),
        "key": rng.choice(["accuracy", "f1", None, 3]),
        "baseline": scalar(rng),
        "candidate": scalar(rng),
        "delta": scalar(rng),
        "rel_delta": scalar(rng),
        "direction": rng.choice(["higher", "lower", None, "sideways"]),
        "ci_low": scalar(rng),
        "ci_high": scalar(rng),
        "status": rng.choice(STATUSES),
    }
    for key in rng.sample(list(row), rng.randint(0, 3)):
        del row[key]
    return row


def comparison(rng: random.Random) -> dict[str, Any]:
    doc: dict[str, Any] = documents.header("comparison") | {
        "artifact": rng.choice(["classifier", "@everyone", None, 5]),
        "target_branch": "main",
        "confidence": rng.choice([0.95, 0.5, 1.5, None, "x"]),
        "baseline": rng.choice([{"how": "merge-base", "ref": "main", "sha": None},
                                {"sha": SHA_A}, {"sha": 5}, None, "main"]),
        "candidate": rng.choice([{"ref": "workspace", "sha": SHA_B}, {}, None, []]),
        "metrics": [metric_row(rng) for _ in range(rng.randint(0, 8))],
        "params": rng.choice([[], [{"name": "a", "baseline": 1, "candidate": 2}], "x", [1]]),
        "plots": rng.choice([[], [{"id": "p", "x": "a", "y": "b", "baseline": [{"a": 1}]}],
                             [{"id": "p", "baseline": "x"}], None]),
        "stages": rng.choice([[], [{"name": "s", "status": "ran"}], [{"status": 1}], "x"]),
        "policy_change": rng.choice([{"changed": False, "diff": ""}, {"changed": True}, None, 1]),
        "errors": rng.choice([[], [{"file": "eval/metrics.json", "revision": "workspace",
                                    "message": "not valid metrics: boom"}],
                              [{"file": None}], "x", [3]]),
        "warnings": rng.choice([[], ["w"], [None], "x"]),
    }  # fmt: skip
    if rng.random() < 0.1:
        del doc[rng.choice(["baseline", "candidate", "metrics", "kind"])]
    if rng.random() < 0.05:
        doc["metrics"] = rng.choice(["all good", {"a": 1}, 7, nested(50)])
    return doc


SAFE_VALUES: list[Any] = [None, 0, 1, 0.5, 0.95, 0.2, -3, 1e300, True, "nan", "inf", "x", "é"]


def plausible_comparison(rng: random.Random) -> dict[str, Any]:
    """A comparison the schema accepts, so publish goes on to judge it under the policy."""
    rows = []
    for name in rng.sample(METRICS, rng.randint(0, len(METRICS))):
        rows.append({
            "name": name, "file": "eval/metrics.json", "key": name.split(":")[-1],
            "baseline": rng.choice(SAFE_VALUES), "candidate": rng.choice(SAFE_VALUES),
            "delta": rng.choice([None, 0.01, -0.2]), "direction": rng.choice(["higher", "lower"]),
            "ci_low": rng.choice([None, -0.1]), "ci_high": rng.choice([None, 0.1]),
            "status": rng.choice([s for s in STATUSES if isinstance(s, str) and s != "exploded"]),
        })  # fmt: skip
    return documents.header("comparison") | {
        "artifact": rng.choice(["classifier", "@everyone", "other"]),
        "confidence": 0.95,
        "baseline": {"how": "merge-base", "ref": "main", "sha": rng.choice([None, SHA_A])},
        "candidate": {"ref": "workspace", "sha": SHA_B},
        "metrics": rows,
        "errors": rng.choice([[], [{"file": "eval/metrics.json", "revision": "workspace",
                                    "message": "not valid metrics: boom"}]]),
    }  # fmt: skip


def document_bytes(rng: random.Random, doc: Any) -> bytes:
    """JSON text of `doc`, sometimes with NaN/1e400/huge literals or broken on purpose."""
    text = json.dumps(doc, default=str)
    roll = rng.random()
    if roll < 0.25 and '"candidate": ' in text:
        text = text.replace('"candidate": ', f'"candidate": {rng.choice(RAW_NUMBERS)}, "x": ', 1)
    elif roll < 0.30:
        text = text[: rng.randrange(len(text) + 1)]
    elif roll < 0.33:
        text = '{"kind": "comparison", "kind": "verdict"}'
    elif roll < 0.36:
        text = "[" * 5000 + "]" * 5000
    elif roll < 0.38:
        return b"\xff\xfe" + os.urandom(50)
    return text.encode()


def verdict(rng: random.Random, comparison_digest: str | None) -> dict[str, Any]:
    doc = documents.header("verdict") | {
        "artifact": "classifier",
        "verdict": rng.choice(["pass", "fail", "neutral", "maybe", None]),
        "summary": rng.choice(["ok", None, 5, "x" * 5000]),
        "rules": rng.choice([[], [{"outcome": "pass", "reason": "r"}], [{"outcome": 1}], "x"]),
        "advisory": rng.choice([True, False, "yes"]),
    }
    if rng.random() < 0.7:
        doc["inputs"] = rng.choice([{"comparison.json": comparison_digest},
                                    {"comparison.json": "sha256:" + "0" * 64}, "x", []])  # fmt: skip
    return doc


def metrics_file(rng: random.Random) -> tuple[str, bytes]:
    """A metrics file for `compare`: JSON or YAML, sometimes hostile."""
    name = rng.choice(["eval/metrics.json", "eval/extra.yaml"])
    roll = rng.random()
    if roll < 0.1:
        return name, b"[" * 5000 + b"]" * 5000 if name.endswith(".json") else b"a:\n" + b"".join(
            b" " * i + b"k:\n" for i in range(1, 2000)
        )
    if roll < 0.2:
        return name, ('{"accuracy": 1' + "0" * 400 + "}").encode()
    if roll < 0.3:
        return name, os.urandom(rng.randint(0, 100))
    data = {"accuracy": scalar(rng), "f1": scalar(rng), "nested": {"auc": scalar(rng)}}
    if rng.random() < 0.1:
        data = rng.choice([[], "text", nested(70), {"accuracy": [1, 2, {"x": None}]}])
    if name.endswith(".json"):
        text = json.dumps(data, default=str)
        if rng.random() < 0.3:
            text = text.replace("{", '{"loss": ' + rng.choice(RAW_NUMBERS) + ", ", 1)
        return name, text.encode()
    return name, yaml.safe_dump(data, allow_unicode=True).encode()


# --- the inputs ------------------------------------------------------------------------------------


def write(path: Path, data: bytes | str | None) -> None:
    if path.is_dir() and not path.is_symlink():
        path.rmdir()
    elif path.exists() or path.is_symlink():
        path.unlink()
    if data is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())


FIXED_COMPARISON = documents.header("comparison") | {
    "artifact": "classifier",
    "baseline": {"how": "merge-base", "ref": "main", "sha": None},
    "candidate": {"ref": "workspace", "sha": SHA_B},
    "metrics": [
        {"name": "accuracy", "file": "eval/metrics.json", "key": "accuracy", "baseline": None,
         "candidate": 0.93, "direction": "higher", "status": "added"},
        {"name": "latency_ms", "file": "eval/metrics.json", "key": "latency_ms",
         "baseline": None, "candidate": 12.0, "direction": "lower", "status": "added"},
    ],
}  # fmt: skip
GOOD_POLICY = b"artifact: classifier\nmetrics:\n  accuracy: {min: 0.5, max_drop: 0.1}\n"


def cases(base: Path) -> Iterator[Case]:
    """Every input, in a fixed order from the seed; each case writes its files when set up."""
    rng = random.Random(SEED)
    gate_repo, report_repo = base / "gate", base / "report"
    trusted, runs, cmp_repo = base / "trusted", base / "runs", base / "compare"
    gate_run = gate_repo / ".mlops-ci"

    for i in range(850):  # mlops-ci.yaml, judged by the gate
        text = policy_text(rng)

        def setup(text: bytes = text) -> None:
            write(gate_repo / "mlops-ci.yaml", text)
            documents.write(gate_run, "comparison.json", FIXED_COMPARISON)

        yield Case("settings", ["gate", "-C", str(gate_repo)], setup, f"settings #{i}")

    for i in range(700):  # comparison.json, read by gate or report
        raw = document_bytes(rng, comparison(rng))
        command = "gate" if i % 2 == 0 else "report"
        repo = gate_repo if command == "gate" else report_repo

        def setup(raw: bytes = raw, repo: Path = repo) -> None:
            write(repo / "mlops-ci.yaml", GOOD_POLICY)
            write(repo / ".mlops-ci" / "comparison.json", raw)
            write(repo / ".mlops-ci" / "verdict.json", None)

        yield Case("comparison", [command, "-C", str(repo)], setup, f"comparison #{i}")

    for i in range(150):  # verdict.json beside a valid comparison, read by report
        comparison_raw = json.dumps(comparison(rng)).encode()
        raw = document_bytes(rng, verdict(rng, documents.digest(comparison_raw)))

        def setup(comparison_raw: bytes = comparison_raw, raw: bytes = raw) -> None:
            write(report_repo / "mlops-ci.yaml", GOOD_POLICY)
            write(report_repo / ".mlops-ci" / "comparison.json", comparison_raw)
            write(report_repo / ".mlops-ci" / "verdict.json", raw)

        yield Case("verdict", ["report", "-C", str(report_repo)], setup, f"verdict #{i}")

    for i in range(300):  # a fork's run directory, published with --no-post
        plausible = rng.random() < 0.7
        doc = plausible_comparison(rng) if plausible else comparison(rng)
        hostile = not plausible or rng.random() < 0.2  # else only comparison.json is sent
        files = {
            "comparison.json": document_bytes(rng, doc),
            "verdict.json": document_bytes(rng, verdict(rng, None)) if hostile else None,
            "ci.json": rng.choice([None, b'{"schema_version": 1, "kind": "ci", "pr_number": "x"}',
                                   b"{}", b"[" * 100]) if hostile else None,
        }  # fmt: skip
        policy = GOOD_POLICY if rng.random() < 0.8 else policy_text(rng)
        run = runs / f"run{i % 5}"

        def setup(
            files: dict[str, bytes | None] = files, policy: bytes = policy, run: Path = run
        ) -> None:
            write(trusted / "mlops-ci.yaml", policy)
            for name, data in files.items():
                write(run / name, data)

        argv = ["publish", "-C", str(trusted), "--run-dir", str(run), "--no-post"]
        yield Case("publish", argv, setup, f"publish #{i}")

    for i in range(100):  # metrics files, compared in a real repository, then gated
        name, data = metrics_file(rng)

        def setup(name: str = name, data: bytes = data) -> None:
            git = Git(cmp_repo)
            git.run("checkout", "--quiet", "--", ".")
            write(cmp_repo / name, data)

        yield Case("metrics", ["compare", "-C", str(cmp_repo)], setup, f"metrics #{i}")
        yield Case("metrics", ["gate", "-C", str(cmp_repo)], lambda: None, f"metrics gate #{i}")


def make_compare_repo(repo: Path) -> None:
    """A git repository whose dvc.yaml declares two metrics files kept in git; `feature`
    (checked out) branches from `main`, so the baseline is main's commit."""
    repo.mkdir(parents=True)
    (repo / ".dvc").mkdir()
    (repo / ".dvc" / "config").write_text("")
    (repo / "eval").mkdir()
    (repo / "dvc.yaml").write_text(
        "stages:\n  evaluate:\n    cmd: python evaluate.py\n    metrics:\n"
        "      - eval/metrics.json:\n          cache: false\n"
        "      - eval/extra.yaml:\n          cache: false\n"
    )
    (repo / "eval" / "metrics.json").write_text('{"accuracy": 0.9, "f1": 0.8}')
    (repo / "eval" / "extra.yaml").write_text("loss: 0.3\n")
    (repo / "mlops-ci.yaml").write_text(
        "artifact: classifier\nmetrics:\n  accuracy: {min: 0.5, max_drop: 0.1}\n"
        "  default: {max_drop_pct: 50}\n"
    )
    git = Git(repo)
    git.run("init", "--quiet", "-b", "main")
    git.commit_all("Metrics")
    git.run("checkout", "--quiet", "-b", "feature")


@contextlib.contextmanager
def alarm(seconds: int) -> Iterator[None]:
    def ring(signum: int, frame: Any) -> None:
        raise Hang(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_in_process(case: Case) -> tuple[int | str, str, float]:
    case.setup()
    out, err = io.StringIO(), io.StringIO()
    started = time.perf_counter()
    try:
        with alarm(TIME_LIMIT_S), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code: int | str = main(case.argv)
    except Hang as exc:
        code = f"hang: {exc}"
    except BaseException as exc:  # SystemExit from argparse included: nothing may escape main
        code = f"crash: {type(exc).__name__}: {exc}"
    return code, err.getvalue(), time.perf_counter() - started


def run_in_subprocess(case: Case) -> tuple[int | str, str]:
    case.setup()

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))

    try:
        proc = subprocess.run(
            [sys.executable, "-m", "mlops_ci.cli", *case.argv],
            capture_output=True,
            text=True,
            timeout=TIME_LIMIT_S,
            preexec_fn=limit,
        )
    except subprocess.TimeoutExpired:
        return "hang: timeout", ""
    return proc.returncode, proc.stderr


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("fuzz")
    for name in ("gate", "report", "trusted", "runs"):
        (base / name).mkdir()
    make_compare_repo(base / "compare")
    return base


def run_all(kinds: set[str], workspace: Path) -> tuple[int, dict[str, dict[int | str, int]]]:
    """Run every case of `kinds` in-process; assert each ended in a documented exit code."""
    started = time.perf_counter()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    selected = [c for c in cases(workspace) if c.kind in kinds]
    problems: list[str] = []
    codes: dict[str, dict[int | str, int]] = {}
    slowest = 0.0
    for case in selected:
        code, err, elapsed = run_in_process(case)
        slowest = max(slowest, elapsed)
        codes.setdefault(case.kind, {}).setdefault(code, 0)
        codes[case.kind][code] += 1
        if code not in ALLOWED or elapsed > TIME_LIMIT_S:
            problems.append(f"{case.label} {case.argv[0]}: {code} in {elapsed:.1f} s; {err[-600:]}")
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss_before
    print(f"\n{len(selected)} inputs in {time.perf_counter() - started:.1f} s; slowest "
          f"{slowest:.2f} s; peak memory grew {grown / 2**20:.0f} MiB; exit codes {codes}")  # fmt: skip
    assert not problems, f"{len(problems)} inputs ended badly:\n" + "\n".join(problems[:15])
    assert grown < MEMORY_LIMIT
    # Each kind reached more than its error path: some inputs were judged, not only refused.
    for kind in kinds:
        assert set(codes[kind]) & {0, 1}, (kind, codes[kind])
    return len(selected), codes


def test_settings_and_run_directories_end_in_a_documented_exit_code(workspace: Path) -> None:
    count, _ = run_all({"settings", "comparison", "verdict", "publish"}, workspace)
    assert count >= 2000


def test_metrics_files_end_in_a_documented_exit_code(workspace: Path) -> None:
    count, _ = run_all({"metrics"}, workspace)
    assert count >= 200  # 100 files, each compared and then gated


def test_a_sample_as_real_processes_with_500_mb_and_10_s(workspace: Path) -> None:
    all_cases = list(cases(workspace))
    # Every 80th input, plus the hostile ones most likely to blow up memory or time.
    hostile = [c for c in all_cases if c.kind in ("settings", "metrics")][::45]
    sample = all_cases[::80] + hostile
    problems = []
    for case in sample:
        code, err = run_in_subprocess(case)
        if code not in ALLOWED:
            problems.append(f"{case.label} {case.argv[0]}: {code}; {err[-600:]}")
    assert len(sample) >= 40
    assert not problems, "\n".join(problems[:10])
