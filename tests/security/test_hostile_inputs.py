"""The hostile-input harness: every entry point of the trust boundary (docs/security.md) gets the
same corpus and must refuse it with its own error or return something inert. A function
registered with `entry_point` but missing from the inventory (or from this harness), or a row of
the inventory naming no registered function, fails here."""

from __future__ import annotations

import ast
import contextlib
import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlops_ci.ci.documents import loads_strict, parse_bounded
from mlops_ci.ci.untrusted.paths import PathOutside, link_target, read_workspace_file
from mlops_ci.ci.untrusted.records import (
    ack_record,
    read_ack_record,
    read_verdict_record,
    verdict_record,
)
from mlops_ci.ci.untrusted.retrain import RetrainRefused, check_retrain_change
from mlops_ci.ci.untrusted.run_dir import (
    UntrustedInputRejected,
    load_untrusted_run_dir,
    read_document,
)
from mlops_ci.ci.untrusted.text import inert_line, inert_lines
from mlops_ci.commands.review import ReviewEventInvalid, read_comment_event
from mlops_ci.gate.waivers import MAX_REASON, MAX_TARGET, BadCommand, parse_command
from mlops_ci.project.errors import MlopsCiError

ROOT = Path(__file__).parents[2]
HEAD = "a" * 40
RECORD = verdict_record({"kind": "verdict", "verdict": "pass", "head_sha": HEAD, "rules": []})
ACK = ack_record(12345, HEAD)

# The corpus: (id, value). Strings, bytes and values of the wrong type alike.
HOSTILE: list[tuple[str, Any]] = [
    ("markdown", "**bold** [x](https://evil.example) ![i](https://t.example/p) | a | b |"),
    ("html", "<img src=x onerror=alert(1)><script>alert(1)</script><details open>"),
    ("comment-opener", "<!-- hidden --> <!-- mlops-ci-report:classifier:pr -->"),
    ("our-verdict-record", f"text\n{RECORD}\nmore"),
    ("our-ack", f"see {ACK} here"),
    ("record-split", "<!" + "-- mlops-ci-verdict AAAA --" + ">"),
    ("mentions-refs", "@everyone @octo/team #1 GH-2 owner/repo#3 www.evil.example"),
    ("controls", "a\x00b\x1b[31mred\x07\x7f\x9b"),
    ("nel-ls-ps", "one\x85two\u2028three\u2029four\r\nfive\rsix"),
    ("bidi", "abc\u202edcba\u2066x\u2069\ufeff"),
    ("dotdot", "../../../../etc/passwd"),
    ("absolute", "/etc/passwd"),
    ("oversize", "x" * 1_000_000),
    ("deep-json", "[" * 5000 + "]" * 5000),
    ("bad-utf8", b"\xff\xfe\xfa not utf-8 \xc0\xaf"),
    ("utf16", "accuracy".encode("utf-16")),
    ("none", None),
    ("int", 12345),
    ("float-nan", float("nan")),
    ("list", ["a", {"b": 1}]),
    ("dict", {"kind": "verdict", "rules": "all"}),
]
IDS = [name for name, _ in HOSTILE]
_OURS = re.compile(r"(?i)<!--|mlops-ci-(?:verdict|waiver|report)")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def as_text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else json.dumps(value) if value is not None else ""


def as_bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else as_text(value).encode("utf-8")


def assert_inert(text: str, *, lines: bool = False) -> None:
    assert not _OURS.search(text), text[:200]
    assert not _CONTROLS.search(text.replace("\n", "") if lines else text), repr(text[:200])
    if not lines:
        assert "\n" not in text and "\r" not in text


# --- one check per entry point ---------------------------------------------------------------


def check_inert_line(value: Any, tmp: Path) -> None:
    assert_inert(inert_line(value))
    assert len(inert_line(value, 120)) <= 120


def check_inert_lines(value: Any, tmp: Path) -> None:
    assert_inert(inert_lines(value), lines=True)


def check_read_verdict_record(value: Any, tmp: Path) -> None:
    # Whatever the text, a record that is not on the last line is never read; the text itself
    # put above the tool's last line cannot change which record is read.
    assert read_verdict_record(value) is None
    assert read_verdict_record(as_text(value) + "\nfooter") is None
    assert read_verdict_record(as_text(value) + "\n" + RECORD)["head_sha"] == HEAD


def check_read_ack_record(value: Any, tmp: Path) -> None:
    assert read_ack_record(value) is None
    assert read_ack_record(f"{as_text(value)}\n\nreply") is None
    assert read_ack_record(f"{as_text(value)}\n\n{ACK}") == ("12345", HEAD)


def check_parse_command(value: Any, tmp: Path) -> None:
    for body in (as_text(value), f"/mlops-ci accept {as_text(value)} because {as_text(value)}"):
        try:
            cmd = parse_command(body)
        except BadCommand:
            continue
        if cmd is not None:
            assert 0 < len(cmd.target) <= MAX_TARGET and len(cmd.reason) <= MAX_REASON
            assert "\n" not in cmd.reason


def check_read_comment_event(value: Any, tmp: Path) -> None:
    payloads: list[Any] = [
        value,
        {"issue": {"number": 1, "pull_request": {}}, "comment": value},
        {
            "issue": {"number": 1, "pull_request": {"url": "x"}},
            "comment": {"id": 2, "user": {"login": value}, "body": value},
        },
    ]
    for payload in payloads:
        path = tmp / "event.json"
        raw = payload if isinstance(payload, bytes) else json.dumps(payload, default=str)
        path.write_bytes(raw if isinstance(raw, bytes) else raw.encode("utf-8"))
        env = {"GITHUB_EVENT_NAME": "issue_comment", "GITHUB_EVENT_PATH": str(path)}
        with contextlib.suppress(ReviewEventInvalid):
            read_comment_event(env)


def check_read_document(value: Any, tmp: Path) -> None:
    path = tmp / "comparison.json"
    path.write_bytes(as_bytes(value))
    with pytest.raises(UntrustedInputRejected):
        read_document(path, "comparison", 64 * 1024)
    link = tmp / "linked.json"
    link.symlink_to(path)
    with pytest.raises(UntrustedInputRejected, match="not a regular file"):
        read_document(link, "comparison", 64 * 1024)


def check_load_untrusted_run_dir(value: Any, tmp: Path) -> None:
    run = tmp / "run"
    run.mkdir()
    (run / "comparison.json").write_bytes(as_bytes(value))
    with pytest.raises(UntrustedInputRejected):
        load_untrusted_run_dir(run)
    (tmp / "outside.json").write_bytes(as_bytes(value))
    (run / "comparison.json").unlink()
    (run / "comparison.json").symlink_to(tmp / "outside.json")
    with pytest.raises(UntrustedInputRejected):
        load_untrusted_run_dir(run)


def check_parse_bounded(value: Any, tmp: Path) -> None:
    def parse(path: str, raw: bytes) -> Any:
        return loads_strict(raw)

    # UnicodeDecodeError and a too-deep document are ValueErrors naming the file; nothing else.
    with contextlib.suppress(ValueError):
        parse_bounded("metrics.json", as_bytes(value), parse)


def check_read_workspace_file(value: Any, tmp: Path) -> None:
    top = tmp / "repo"
    top.mkdir(exist_ok=True)
    (tmp / "secret").write_text("hunter2")
    rel = as_text(value).replace("\0", "")[:200] or "x"
    try:
        data = read_workspace_file(top, top / rel, rel)
    except (PathOutside, ValueError):
        data = None
    assert data is None or b"hunter2" not in data
    link = top / "link"
    link.unlink(missing_ok=True)
    link.symlink_to(tmp / "secret")
    with pytest.raises(PathOutside):
        read_workspace_file(top, link, "link")


def check_link_target(value: Any, tmp: Path) -> None:
    try:
        target = link_target("data/t.csv", as_bytes(value))
    except PathOutside:
        return
    assert not target.startswith(("/", "../")) and target != ".."
    assert posix_inside(target)


def posix_inside(path: str) -> bool:
    return ".." not in path.split("/")


@pytest.fixture(scope="module")
def retrain_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    repo = tmp_path_factory.mktemp("retrain") / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    (repo / "dvc.yaml").write_text("stages: {}\n")
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-qm", "base"], cwd=repo, check=True)
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    return repo, sha


def check_retrain_change_entry(value: Any, tmp: Path, retrain: tuple[Path, str]) -> None:
    from mlops_ci.project.git import Git

    repo, base = retrain
    run = tmp / "run"
    run.mkdir(exist_ok=True)
    (run / "retrain.bundle").write_bytes(as_bytes(value)[:100_000])
    for doc in (
        {"base_sha": value, "changed_files": [value]},
        {"base_sha": base, "changed_files": [as_text(value)[:1000]]},
    ):
        with pytest.raises((RetrainRefused, MlopsCiError)) as caught:
            check_retrain_change(Git(repo), run, doc, base_sha=base, branch="mlops-ci/retrain/m")
        assert "<!--" not in str(caught.value)


CHECKS: dict[str, Callable[..., None]] = {
    "mlops_ci.ci.untrusted.text.inert_line": check_inert_line,
    "mlops_ci.ci.untrusted.text.inert_lines": check_inert_lines,
    "mlops_ci.ci.untrusted.records.read_verdict_record": check_read_verdict_record,
    "mlops_ci.ci.untrusted.records.read_ack_record": check_read_ack_record,
    "mlops_ci.ci.untrusted.run_dir.read_document": check_read_document,
    "mlops_ci.ci.untrusted.run_dir.load_untrusted_run_dir": check_load_untrusted_run_dir,
    "mlops_ci.ci.untrusted.retrain.check_retrain_change": check_retrain_change_entry,
    "mlops_ci.ci.untrusted.paths.read_workspace_file": check_read_workspace_file,
    "mlops_ci.ci.untrusted.paths.link_target": check_link_target,
    "mlops_ci.ci.documents.parse_bounded": check_parse_bounded,
    "mlops_ci.gate.waivers.parse_command": check_parse_command,
    "mlops_ci.commands.review.read_comment_event": check_read_comment_event,
}


def inventory() -> list[str]:
    """The validating functions docs/security.md's inventory names, in order."""
    text = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    table = text.split("## Inventory", 1)[1]
    return re.findall(r"^\|[^|]+\|[^|]+\| `([\w.]+)` \|", table, re.M)


def registered() -> set[str]:
    """Every function decorated with `entry_point` anywhere in the package (read from the
    source, so a module nobody imports here still counts)."""
    found = set()
    for path in sorted((ROOT / "mlops_ci").rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and any(
                isinstance(d, ast.Call) and getattr(d.func, "id", None) == "entry_point"
                for d in node.decorator_list
            ):
                found.add(f"{module}.{node.name}")
    return found


def test_the_inventory_names_every_entry_point_and_nothing_else():
    rows = inventory()
    assert len(rows) == len(set(rows)) >= 12
    assert set(rows) == registered(), "docs/security.md and the `entry_point`s differ"
    assert set(CHECKS) == registered(), "an entry point has no hostile-input check here"


def test_the_registry_and_the_source_agree():
    from mlops_ci.ci.untrusted.inventory import ENTRY_POINTS, load_all

    load_all()
    import mlops_ci.commands.review
    import mlops_ci.gate.waivers  # noqa: F401

    assert set(ENTRY_POINTS) == registered()


def test_the_readme_links_the_threat_model():
    assert "docs/security.md" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_our_record_formats_live_only_in_the_boundary():
    """No module but records.py spells a record of ours: none can parse one on its own."""
    allowed = {ROOT / "mlops_ci" / "ci" / "untrusted" / name for name in ("records.py", "text.py")}  # fmt: skip
    for path in (ROOT / "mlops_ci").rglob("*.py"):
        if path in allowed:
            continue
        text = path.read_text(encoding="utf-8")
        assert "mlops-ci-verdict" not in text and "mlops-ci-waiver " not in text, path


@pytest.mark.parametrize("value", [v for _, v in HOSTILE], ids=IDS)
@pytest.mark.parametrize("entry", inventory())
def test_every_entry_point_survives_the_corpus(entry, value, tmp_path, request):
    check = CHECKS[entry]
    if check is check_retrain_change_entry:
        check(value, tmp_path, request.getfixturevalue("retrain_repo"))
    else:
        check(value, tmp_path)
