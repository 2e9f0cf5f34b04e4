"""Attacks on the forge transport and posting, each written as the attack.

- 9: repo-controlled names that reach a GitHub Actions log must not form workflow commands
  (`::add-mask::`, `::stop-commands::`, `##[error]` anywhere in a line) — judged by a parser
  that follows the runner's own (`ActionCommand.TryParseV2` / `TryParse`).
- 10: names that GitHub's renderer would turn into a link or an image stay text, in the
  comment and in the check run's summary (cmarkgfm with the GFM extensions, autolink included).
- 11: with GET /user unreadable, a comment that merely carries our marker is not ours: we
  neither overwrite it nor fail on it; `publish` sends the status even when the comment fails.
- 17: the HTTP timeout bounds the whole answer, not each read; status POSTs are retried after a
  timeout; a comment POST the forge applies after our timeout does not become a second comment.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import cmarkgfm
import pytest
from cmarkgfm.cmark import Options

from mlops_ci.forge import ForgeUnavailable, detect_forge, status_context
from mlops_ci.forge.http import ForgeSession, RetryPolicy
from mlops_ci.project.errors import EXIT_SERVICE
from mlops_ci.report import GITHUB_COMMENT_LIMIT, build_report, report_marker_id
from mlops_ci.report.markdown import md_text
from tests.commands.test_untrusted import trusted_checkout, trusted_env  # noqa: F401 (fixtures)
from tests.fakes.github import DEFAULT_TOKEN
from tests.fakes.gitlab import DEFAULT_LOGIN as GITLAB_LOGIN
from tests.forge.test_forge_http import session_for
from tests.report.test_report_inputs import make_comparison, make_verdict, metric

REPO = "octo/demo"
PR = 7
SHA = "a" * 40
MARKER = report_marker_id("classifier", "pr")
ROOT = Path(__file__).resolve().parents[2]

# --- 9: workflow commands --------------------------------------------------------------------

# What actions/runner registers: every command extension plus stop-commands.
RUNNER_COMMANDS = {
    "set-env",
    "set-output",
    "save-state",
    "add-mask",
    "add-path",
    "add-matcher",
    "remove-matcher",
    "debug",
    "notice",
    "warning",
    "error",
    "group",
    "endgroup",
    "echo",
    "stop-commands",
}
HOSTILE_NAME = (
    "acc\n::add-mask::ghs_\n::stop-commands::pwned\n  ::error title=x::fake failure"
    "\t##[warning]mid-line ##[set-output name=verdict]pass"
)


def runner_commands(log: str) -> list[tuple[str, str]]:
    """(command, data) of every line the runner would take as a workflow command.

    Mirrors actions/runner: output is read line by line (.NET ReadLine: \\n, \\r or \\r\\n);
    TryParseV2 wants `::name ...::` after leading whitespace (.NET TrimStart); the legacy
    TryParse takes `##[name ...]` anywhere in the line.
    """
    found = []
    for line in re.split(r"\r\n|\r|\n", log):
        stripped = line.lstrip()
        v2 = re.match(r"::([^:]*?)::(.*)", stripped) if stripped.startswith("::") else None
        if v2 and v2.group(1).split(" ", 1)[0] in RUNNER_COMMANDS:
            found.append((v2.group(1).split(" ", 1)[0], v2.group(2)))
            continue
        for legacy in re.finditer(r"##\[([^\]]*)\](.*)", line):
            if legacy.group(1).split(" ", 1)[0] in RUNNER_COMMANDS:
                found.append((legacy.group(1).split(" ", 1)[0], legacy.group(2)))
                break
    return found


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def test_runner_parser_sees_what_the_runner_sees():
    assert runner_commands("  ::add-mask::x\nok ##[error]y\r::stop-commands::t") == [
        ("add-mask", "x"),
        ("error", "y"),
        ("stop-commands", "t"),
    ]
    assert runner_commands("::unknown::x\n:\u200b:error::x\n##\u200b[error]x") == []


def test_hostile_metric_name_forms_no_workflow_command_in_the_gate_log(tmp_path):
    """`mlops-ci gate` in GitHub Actions: only our own annotations are commands."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "--quiet", "-b", "main")
    (repo / "mlops-ci.yaml").write_text(
        "artifact: classifier\nmetrics:\n  default: {max_drop: 0.01}\n  accuracy: {min: 0.9}\n"
    )
    git(repo, "add", "mlops-ci.yaml")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "--quiet", "-m", "policy")
    sha = git(repo, "rev-parse", "HEAD")
    comparison = make_comparison(
        baseline={"how": "merge-base", "ref": "main", "sha": sha, "subject": HOSTILE_NAME},
        candidate={"ref": "workspace", "sha": sha, "branch": HOSTILE_NAME, "dirty": False},
        metrics=[
            metric("accuracy", 0.95, 0.96, "improved"),
            metric(HOSTILE_NAME, 0.9, 0.5, "regressed"),
        ],
    )
    run_dir = repo / ".mlops-ci"
    run_dir.mkdir()
    (run_dir / "comparison.json").write_text(json.dumps(comparison))
    env = {
        **os.environ,
        "GITHUB_ACTIONS": "true",
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "PYTHONPATH": str(ROOT),
    }
    for extra in ([], ["--json"]):
        done = subprocess.run(
            [sys.executable, "-m", "mlops_ci.cli", "gate", "-C", str(repo), *extra],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 1, done.stderr
        assert "acc" in done.stdout  # the name is still shown, only defused
        if extra:  # the --json document is the verdict, the name in it unchanged
            assert HOSTILE_NAME in [r["metric"] for r in json.loads(done.stdout)["rules"]]
        commands = runner_commands(done.stdout) + runner_commands(done.stderr)
        # Exactly our annotation for the one failing rule, carrying the whole name as data.
        assert [name for name, _ in commands] == ["error"], commands
        assert "acc%0A::add-mask::ghs_%0A" in commands[0][1]


def test_a_schema_error_quoting_a_name_forms_no_command(tmp_path, fake_github, monkeypatch):
    """The trusted job refuses a tampered document; its message quotes the hostile value."""
    from tests.commands.test_untrusted import HEAD, comparison_doc, write_run_dir

    doc = comparison_doc()
    doc["metrics"][0]["name"] = "x\x01 ##[add-mask]ghs_ and ##[stop-commands]pwned"
    run_dir = write_run_dir(tmp_path / "run", doc)
    (tmp_path / "trusted").mkdir()
    (tmp_path / "trusted" / "mlops-ci.yaml").write_text("artifact: classifier\n")
    env = {
        **os.environ,
        **fake_github.ci_env(tmp_path / "job", repo=REPO, pr=PR, head_sha=HEAD),
        "PYTHONPATH": str(ROOT),
    }
    command = ["publish", "-C", str(tmp_path / "trusted"), "--run-dir", str(run_dir)]
    done = subprocess.run(
        [sys.executable, "-m", "mlops_ci.cli", *command, "--sha", HEAD],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "does not match the comparison schema" in done.stderr
    assert runner_commands(done.stdout + "\n" + done.stderr) == []


# --- 10: links and images in names -----------------------------------------------------------

AUTOLINK_NAMES = [
    "acc_www.evil.example",
    "a_b_www.evil.example",
    "x~www.evil.example",
    "x*www.evil.example/path",
    "(www.evil.example)",
    "per_class_http://evil.example/x",
    "loss https://evil.example",
    "f1 ftp://evil.example",
    "reviewer_user@host.example",
    "mail user@host.example",
    "mailto:user@host.example",
    "xmpp:user@host.example",
    "ping @octocat and @org/team",
    "fixes #123 and org/repo#4 and GH-5",
    "![x](https://tracker.example/pixel.png)",
    "[click](https://evil.example)",
    "<https://evil.example>",
    "<user@host.example>",
]


class Links(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__()
        self.found: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("a", "img"):
            self.found.append(f"<{tag} {dict(attrs)}>")


def render(markdown: str) -> str:
    return cmarkgfm.markdown_to_html_with_extensions(
        markdown,
        options=Options.CMARK_OPT_UNSAFE,
        extensions=["table", "strikethrough", "autolink", "tagfilter", "tasklist"],
    )


@pytest.mark.parametrize("name", AUTOLINK_NAMES)
def test_a_name_renders_no_link_or_image(name):
    # Inline, at a line start, and in a table cell: GFM autolinks differ by what precedes.
    for markdown in (md_text(name), f"x {md_text(name)} y", f"| a |\n|---|\n| {md_text(name)} |"):
        html = render(markdown)
        assert Links(html).found == [], (name, markdown, html)
    visible = re.sub(r"<[^>]+>", "", render(md_text(name))).replace("\u200b", "").strip()
    assert visible.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">") == name


def test_report_with_autolink_names_renders_no_link():
    metrics = [metric(n, 0.5, 0.4, "regressed") for n in AUTOLINK_NAMES]
    verdict = make_verdict("fail")
    verdict["rules"] = [
        {"metric": n, "rule": "max_drop", "outcome": "fail", "reason": n} for n in AUTOLINK_NAMES
    ]
    report = build_report(make_comparison(metrics=metrics), verdict, limit=GITHUB_COMMENT_LIMIT)
    assert Links(render(report.full_markdown)).found == []


def test_check_run_summary_escapes_names_like_the_comment(fake_github, tmp_path):
    from mlops_ci.commands.gate import post_verdict
    from mlops_ci.gate.policy import load_policy
    from mlops_ci.gate.rules import evaluate_gate

    (tmp_path / "mlops-ci.yaml").write_text(
        "artifact: classifier\nmetrics:\n  default: {max_drop: 0.01}\n"
    )
    policy = load_policy(tmp_path, None)
    comparison = make_comparison(metrics=[metric(n, 0.9, 0.5, "regressed") for n in AUTOLINK_NAMES])
    verdict = evaluate_gate(comparison, policy.settings, policy=policy.source)
    assert verdict.verdict == "fail"
    forge = detect_forge(fake_github.ci_env(tmp_path / "ci", repo=REPO), tmp_path / "run")
    post_verdict(forge, verdict, SHA)
    (run,) = fake_github.repo(REPO).check_runs
    summary = run["output"]["summary"]
    assert "tracker.example" in summary  # the names are there, as text
    assert Links(render(summary)).found == [], summary


# --- 11: a comment that only carries our marker ----------------------------------------------


def app_env(fake_github, tmp_path: Path) -> dict[str, str]:
    """A GitHub App installation token: GET /user answers 403, our login is unknown."""
    fake_github.add_token("ghs_app_installation", "mlops-app[bot]")
    env = fake_github.ci_env(tmp_path / "ci", repo=REPO, pr=PR, head_sha=SHA)
    return {**env, "MLOPS_CI_TOKEN": "ghs_app_installation"}


def comments(fake_github) -> list[dict[str, Any]]:
    return fake_github.comments_on(REPO, PR)


def test_unreadable_user_never_overwrites_a_reviewers_comment(fake_github, tmp_path):
    env = app_env(fake_github, tmp_path)
    fake_github.may_edit_others("mlops-app[bot]")  # the token could edit it: it must not
    fake_github.seed_comments(REPO, PR, 1, login="reviewer", body=f"quoting <!-- {MARKER} -->")
    forge = detect_forge(env, tmp_path / "run")
    posted = forge.upsert_comment("the report", MARKER)
    assert posted.created
    reviewer, ours = comments(fake_github)
    assert reviewer["body"] == f"quoting <!-- {MARKER} --> (1)"
    assert ours["user"]["login"] == "mlops-app[bot]"
    assert ours["body"].endswith("the report")
    # Within the run the created comment taught us our login: the next post updates it.
    assert forge.upsert_comment("again", MARKER).created is False
    assert [c["body"].endswith("again") for c in comments(fake_github)] == [False, True]


def test_a_copied_marker_cannot_block_posting(fake_github, tmp_path):
    env = app_env(fake_github, tmp_path)
    fake_github.seed_comments(REPO, PR, 1, login="reviewer", body=f"<!-- {MARKER} --> mine now")
    posted = detect_forge(env, tmp_path / "run").upsert_comment("the report", MARKER)
    assert posted.created
    assert [c["user"]["login"] for c in comments(fake_github)] == ["reviewer", "mlops-app[bot]"]


def test_a_comment_that_turns_out_not_to_be_editable_is_replaced_not_fatal(fake_github, tmp_path):
    """Even when the author matches (MLOPS_CI_COMMENT_AUTHOR set wrong), a PATCH 403 makes a
    new comment instead of exit 3."""
    env = {**app_env(fake_github, tmp_path), "MLOPS_CI_COMMENT_AUTHOR": "reviewer"}
    fake_github.seed_comments(REPO, PR, 1, login="reviewer", body=f"<!-- {MARKER} --> x")
    posted = detect_forge(env, tmp_path / "run").upsert_comment("the report", MARKER)
    assert posted.created
    assert comments(fake_github)[0]["body"] == f"<!-- {MARKER} --> x (1)"


def test_gitlab_unreadable_user_does_not_edit_a_strangers_note(fake_gitlab, tmp_path):
    env = fake_gitlab.ci_env(project="42", mr=PR, head_sha=SHA)
    fake_gitlab.hide_user(GITLAB_LOGIN)
    fake_gitlab.seed_notes("42", PR, 1, login="reviewer", body=f"<!-- {MARKER} --> copied")
    posted = detect_forge(env, tmp_path / "run").upsert_comment("the report", MARKER)
    assert posted.created
    notes = fake_gitlab.notes_on("42", PR)
    assert [n["author"]["username"] for n in notes] == ["reviewer", GITLAB_LOGIN]
    assert notes[0]["body"] == f"<!-- {MARKER} --> copied (1)"


def test_publish_sends_the_status_even_when_the_comment_fails(
    fake_github,
    trusted_env,  # noqa: F811 (the fixture imported above)
    tmp_path,
    capsys,
    monkeypatch,
):
    from tests.commands.test_untrusted import HEAD, publish, write_run_dir

    monkeypatch.setenv("MLOPS_CI_RETRIES", "2")
    run_dir = write_run_dir(tmp_path / "untrusted-run")
    # The comment POST fails on every attempt (3); the status POST after it goes through.
    fake_github.fail_next(3, status=502, method="POST")
    assert publish(run_dir) == EXIT_SERVICE
    err = capsys.readouterr().err
    assert "502" in err
    assert comments(fake_github) == []
    (status,) = fake_github.repo(REPO).statuses
    assert status["sha"] == HEAD
    assert status["state"] == "success"


# --- 17: timeouts bound the whole answer -----------------------------------------------------


def test_a_trickled_answer_stops_at_the_timeout(fake_github):
    """1 byte per 0.1 s: every read is quick, the answer takes ~15 s; the timeout is 0.5 s."""
    fake_github.trickle(0.1, count=1)
    session = session_for(fake_github, {"MLOPS_CI_HTTP_TIMEOUT": "0.5"})
    started = time.monotonic()
    assert session.get_json(f"repos/{REPO}/issues/1/comments") == []  # the retry is served
    assert time.monotonic() - started < 5  # bound, not a speed target: the trickle takes ~15 s
    assert session.calls == 2


def test_a_trickled_post_is_not_retried_but_says_it_may_have_landed(fake_github, tmp_path):
    fake_github.trickle(0.1, count=1, method="POST")
    env = {**fake_github.ci_env(tmp_path / "ci", repo=REPO), "MLOPS_CI_HTTP_TIMEOUT": "0.5"}
    forge = detect_forge(env, tmp_path / "run")
    started = time.monotonic()
    with pytest.raises(ForgeUnavailable, match="may or may not have been applied"):
        forge.record_deployment(SHA, "production", "classifier@v1.0.0", "success", "ok")
    assert time.monotonic() - started < 5
    assert len(fake_github.repo(REPO).deployments) == 1  # applied once, never sent twice


def test_a_timed_out_status_post_is_retried(fake_github, tmp_path):
    env = {**fake_github.ci_env(tmp_path / "ci", repo=REPO), "MLOPS_CI_HTTP_TIMEOUT": "0.3"}
    fake_github.slow(1.0, count=1, method="POST")
    forge = detect_forge(env, tmp_path / "run")
    status = forge.set_status(SHA, "failure", "accuracy dropped", status_context("classifier"))
    assert status["state"] == "failure"
    # A commit status is safe to send twice: the newest of a context is the one shown.
    assert [s["state"] for s in fake_github.repo(REPO).statuses] == ["failure", "failure"]


def test_a_comment_post_applied_after_the_timeout_is_not_duplicated(fake_github, tmp_path):
    env = {**fake_github.ci_env(tmp_path / "ci", repo=REPO, pr=PR), "MLOPS_CI_HTTP_TIMEOUT": "0.5"}
    fake_github.apply_late(0.7, count=1, method="POST")  # lands after our 0.5 s
    forge = detect_forge(env, tmp_path / "run")
    forge.upsert_comment("the report", MARKER)
    fake_github.wait_idle()
    mine = [c for c in comments(fake_github) if MARKER in c["body"]]
    assert len(mine) == 1, [c["id"] for c in mine]
    assert mine[0]["body"].endswith("the report")
    assert DEFAULT_TOKEN not in repr(forge)


def test_a_command_split_across_writes_is_defused_too():
    import io

    from mlops_ci.ci.output import (
        ZWSP,
        CommandSafeStream,
        inert_log,
        json_for_log,
        write_command,
    )

    text = "ok\n  ::add-mask::a\r::error::b ##[warning]c\n:\n::x::\n##"
    for cut in range(len(text) + 1):
        for cut2 in range(cut, len(text) + 1, 3):
            sink = io.StringIO()
            stream = CommandSafeStream(sink)
            for piece in (text[:cut], text[cut:cut2], text[cut2:], "[error]d\n"):
                stream.write(piece)
            log = sink.getvalue()
            assert runner_commands(log) == [], (cut, cut2, log)
            assert log.replace(ZWSP, "") == text + "[error]d\n"
    # A JSON document needs no defusing: written with \u005b it parses to the same value.
    document = {"name": HOSTILE_NAME}
    text = json_for_log(json.dumps(document, indent=2))
    assert inert_log(text) == text
    assert json.loads(text) == document
    # Our own command passes the guard, on a line of its own.
    sink = io.StringIO()
    stream = CommandSafeStream(sink)
    stream.write("progress ")
    write_command(stream, "::error title=t::reason%0A::add-mask::x")
    assert runner_commands(sink.getvalue()) == [("error", "reason%0A::add-mask::x")]


def test_action_outputs_step_forms_no_command(tmp_path):
    """`python -m mlops_ci.ci.output outputs` (every action's last step) echoes each output."""
    run_dir = tmp_path / ".mlops-ci"
    run_dir.mkdir()
    verdict = make_verdict("fail")
    verdict["summary"] = HOSTILE_NAME
    (run_dir / "verdict.json").write_text(json.dumps(verdict))
    output = tmp_path / "output"
    env = {**os.environ, "GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(output)}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-m", "mlops_ci.ci.output", "outputs", "--run-dir", str(run_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert "output summary=acc" in done.stdout
    assert runner_commands(done.stdout + "\n" + done.stderr) == []
    assert HOSTILE_NAME in output.read_text()  # the output itself keeps the value as it is


def test_a_trickled_https_answer_stops_at_the_timeout(fake_github, tmp_path, monkeypatch):
    """The same over TLS (what GitHub speaks): the deadline cuts an encrypted socket too."""
    import shutil
    import ssl

    if shutil.which("openssl") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("openssl is required in CI")
        pytest.skip("openssl not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    request = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    where = ["-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"]
    subprocess.run(
        ["openssl", *request, *where, "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    fake_github.httpd.socket = context.wrap_socket(fake_github.httpd.socket, server_side=True)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    url = fake_github.url.replace("http://", "https://")
    session = ForgeSession(
        url, forge="GitHub", token=DEFAULT_TOKEN, policy=RetryPolicy(attempts=2, timeout=0.5)
    )
    assert session.get_json(f"repos/{REPO}/issues/1/comments") == []
    fake_github.trickle(0.1, count=1)
    started = time.monotonic()
    assert session.get_json(f"repos/{REPO}/issues/1/comments") == []
    assert time.monotonic() - started < 5  # the trickled answer alone takes ~15 s
    assert session.calls == 3
