"""The retrying session: policy from the environment, rate limits, timeouts, typed errors."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mlops_ci.forge import (
    ForgeNotFound,
    ForgeRateLimited,
    ForgeRejected,
    ForgeUnavailable,
    detect_forge,
)
from mlops_ci.forge.http import ForgeSession, RetryPolicy
from mlops_ci.project.errors import EXIT_SERVICE, ConfigError
from mlops_ci.report import report_marker_id
from tests.fakes.github import DEFAULT_TOKEN

REPO = "octo/demo"


def session_for(fake, env: dict[str, str] | None = None) -> ForgeSession:
    policy = RetryPolicy.from_env({"MLOPS_CI_RETRY_BASE": "0.01", **(env or {})})
    return ForgeSession(fake.url, forge="GitHub", token=DEFAULT_TOKEN, policy=policy)


def test_policy_from_env():
    policy = RetryPolicy.from_env(
        {
            "MLOPS_CI_RETRIES": "2",
            "MLOPS_CI_RETRY_BASE": "0.5",
            "MLOPS_CI_MAX_WAIT": "9",
            "MLOPS_CI_HTTP_TIMEOUT": "4",
        }
    )
    assert policy == RetryPolicy(attempts=3, base=0.5, max_wait=9, timeout=4)
    assert RetryPolicy.from_env({}) == RetryPolicy()
    assert all(0 <= policy.backoff(n) <= min(9, 0.5 * 2**n) for n in range(10))
    with pytest.raises(ConfigError, match="MLOPS_CI_MAX_WAIT"):
        RetryPolicy.from_env({"MLOPS_CI_MAX_WAIT": "soon"})


def test_token_never_in_repr(fake_github, tmp_path):
    session = session_for(fake_github)
    assert DEFAULT_TOKEN not in repr(session)
    forge = detect_forge(fake_github.ci_env(tmp_path), tmp_path)
    assert DEFAULT_TOKEN not in repr(forge) + repr(vars(forge))


def test_404_is_final_and_typed(fake_github):
    session = session_for(fake_github)
    with pytest.raises(ForgeNotFound, match="answered 404: Not Found"):
        session.request("PATCH", f"repos/{REPO}/issues/comments/1", json={"body": "x"})
    assert len(fake_github.requests) == 1


def test_rate_limit_longer_than_the_cap_fails_at_once(fake_github):
    fake_github.rate_limit_next(1, retry_after=3600)
    session = session_for(fake_github, {"MLOPS_CI_MAX_WAIT": "5"})
    started = time.monotonic()
    with pytest.raises(ForgeRateLimited, match="MLOPS_CI_MAX_WAIT=5") as caught:
        session.get_json(f"repos/{REPO}/issues/1/comments")
    assert time.monotonic() - started < 1
    assert caught.value.exit_code == 3
    assert "secondary rate limit" in str(caught.value)


def test_primary_rate_limit_waits_for_the_reset(fake_github):
    fake_github.rate_limit_next(1, retry_after=None, reset_in=1)
    started = time.monotonic()
    assert session_for(fake_github).get_json(f"repos/{REPO}/issues/1/comments") == []
    assert time.monotonic() - started >= 0.9
    assert [r.status for r in fake_github.requests] == [403, 200]


def test_persistent_rate_limit_gives_up_typed(fake_github):
    fake_github.rate_limit_next(5, retry_after=0, status=429)
    with pytest.raises(ForgeRateLimited, match="failed after 3 attempts"):
        session_for(fake_github, {"MLOPS_CI_RETRIES": "2"}).get_json(
            f"repos/{REPO}/issues/1/comments"
        )


def test_link_to_another_host_is_refused(fake_github):
    session = session_for(fake_github)
    with pytest.raises(ForgeRejected, match="another host"):
        session.url("http://elsewhere.invalid/repos")


def test_connection_refused_is_retried_then_unavailable():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    session = ForgeSession(
        f"http://127.0.0.1:{port}",
        forge="GitHub",
        token="secret-token-value",
        policy=RetryPolicy(attempts=3, base=0.01),
    )
    with pytest.raises(
        ForgeUnavailable, match="failed after 3 attempts, last: could not connect"
    ) as caught:
        session.get_json("user")
    assert "secret-token-value" not in str(caught.value)
    assert session.calls == 3


def test_slow_get_is_retried(fake_github):
    fake_github.slow(0.6, count=1)
    session = session_for(fake_github, {"MLOPS_CI_HTTP_TIMEOUT": "0.2"})
    assert session.get_json(f"repos/{REPO}/issues/1/comments") == []
    assert session.calls == 2


def test_timed_out_post_that_landed_is_not_posted_twice(fake_github, tmp_path):
    env = {**fake_github.ci_env(tmp_path / "ci", repo=REPO, pr=3), "MLOPS_CI_HTTP_TIMEOUT": "0.3"}
    fake_github.slow(1.0, count=1, method="POST")
    forge = detect_forge(env, tmp_path / ".mlops-ci")
    forge.upsert_comment("report", report_marker_id("classifier", "pr"))
    (comment,) = fake_github.comments_on(REPO, 3)
    assert comment["body"].endswith("report")
    assert [r.method for r in fake_github.requests] == ["GET", "POST", "GET", "PATCH"]


class _WebPage(BaseHTTPRequestHandler):
    """A web server, not an API: what a mistyped GITHUB_API_URL or CI_API_V4_URL points at."""

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        body = self.server.body  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("content-type", self.server.content_type)  # type: ignore[attr-defined]
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = do_PUT = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def web_page() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _WebPage)
    server.body = b"<!doctype html><html><body>Sign in</body></html>"  # type: ignore[attr-defined]
    server.content_type = "text/html; charset=utf-8"  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_2xx_answer_that_is_not_json_is_a_rejection_not_a_bug(
    web_page, fake_github, fake_gitlab, tmp_path
):
    url = f"http://127.0.0.1:{web_page.server_address[1]}"
    github = detect_forge({**fake_github.ci_env(tmp_path), "GITHUB_API_URL": url}, tmp_path)
    gitlab = detect_forge({**fake_gitlab.ci_env(), "CI_API_V4_URL": url + "/api/v4"}, tmp_path)
    for forge in (github, gitlab):
        with pytest.raises(ForgeRejected, match="not JSON") as caught:
            forge.set_status("a" * 40, "success", "ok", "mlops-ci/classifier")
        assert caught.value.exit_code == EXIT_SERVICE
        assert "/statuses/" + "a" * 40 in str(caught.value)
        with pytest.raises(ForgeRejected, match="text/html"):
            forge.upsert_comment("report", report_marker_id("classifier", "pr"))
        assert DEFAULT_TOKEN not in str(caught.value)
    # JSON, but not the object the API answers: a missing id is a rejection too.
    web_page.body = b"{}"
    web_page.content_type = "application/json"
    with pytest.raises(ForgeRejected, match="without id"):
        github.record_deployment("a" * 40, "production", "classifier@v1.0.0", "success", "ok")
    with pytest.raises(ForgeRejected, match="without id"):
        gitlab.upsert_comment("report", report_marker_id("classifier", "pr"))
