"""A stateful loopback HTTP server with the knobs a flaky forge needs: 5xx bursts, rate limits,
slow answers. GitHub and GitLab subclasses add routes and state.

Control endpoints under `/_fake/` (never part of a forge's API) let a process that did not start
the server (act, gitlab-ci-local) read the state or turn the knobs:
`GET /_fake/state`, `POST /_fake/dump`, `POST /_fake/knobs` with JSON
`{"fail_next": 3, "status": 502}` / `{"rate_limit_next": 1, "retry_after": 2}` / `{"delay": 0.5}`
/ `{"trickle": 0.5, "count": 1}` / `{"apply_late": 2, "count": 1}`; `POST /_fake/pull` with
`{"repo": "o/r", "number": 7, "head_sha": "<sha>"}` moves a pull request's head (a push).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

Reply = tuple[int, dict[str, str], Any]


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)


class FakeForge:
    """Base: transport, request log, fault injection. Subclasses implement `route`."""

    name = "forge"
    rate_limit_status = 403

    def __init__(self, host: str = "127.0.0.1", port: int = 0, state_file: Path | None = None):
        self.lock = threading.RLock()
        self.requests: list[Recorded] = []
        self.violations: list[str] = []
        self.state_file = state_file
        self._faults: list[tuple[str | None, Reply]] = []  # (only this method, answer)
        self.delay = 0.0
        self.delay_next = 0
        self.delay_method: str | None = None
        # (only this method, seconds, requests left; -1: all) for trickled and late-applied answers
        self._trickle: list[tuple[str | None, float, int]] = []
        self._late: list[tuple[str | None, float, int]] = []
        self.in_flight = 0  # requests being handled (a late-applied one is still in flight)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                fake._dispatch(self)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output quiet

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeForge:
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.dump()

    def __enter__(self) -> FakeForge:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- knobs -------------------------------------------------------------------------------

    def fail_next(self, count: int, status: int = 502, *, method: str | None = None) -> None:
        """The next `count` API requests (of `method`, if given) answer `status` without
        touching the state."""
        with self.lock:
            self._faults += [(method, (status, {}, {"message": "Server Error"}))] * count

    def rate_limit_next(
        self,
        count: int = 1,
        *,
        retry_after: float | None = 2,
        reset_in: float | None = None,
        status: int | None = None,
    ) -> None:
        """The next `count` requests are rate limited (GitHub's secondary limit answers 403,
        GitLab answers 429)."""
        status = status or self.rate_limit_status
        headers: dict[str, str] = {}
        if retry_after is not None:
            headers["Retry-After"] = str(int(retry_after))
        if reset_in is not None:
            headers["X-RateLimit-Remaining"] = "0"
            headers["X-RateLimit-Reset"] = str(int(time.time() + reset_in))
        with self.lock:
            self._faults += [(None, (status, headers, self.rate_limit_body()))] * count

    def slow(self, seconds: float, count: int | None = None, *, method: str | None = None) -> None:
        """Answer `seconds` late: the next `count` requests (of `method`), or all when count is
        None. The request is applied first, as a slow real server would, so a client that
        times out does not know whether it landed."""
        with self.lock:
            self.delay = seconds
            self.delay_next = -1 if count is None else count
            self.delay_method = method

    def trickle(
        self, seconds_per_byte: float, count: int | None = None, *, method: str | None = None
    ) -> None:
        """Send the next `count` answers (of `method`; all when count is None) one byte at a
        time, status line and headers included: a client whose timeout is per read never
        times out on such an answer. The request is applied first."""
        with self.lock:
            self._trickle.append((method, seconds_per_byte, -1 if count is None else count))

    def apply_late(self, seconds: float, count: int = 1, *, method: str | None = None) -> None:
        """Apply the next `count` requests (of `method`) only after `seconds`, then answer: a
        client that timed out meanwhile sees no trace of the request until it lands."""
        with self.lock:
            self._late.append((method, seconds, count))

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Until no request is being handled (a late-applied one has landed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if not self.in_flight:
                    return
            time.sleep(0.02)
        raise TimeoutError(f"fake {self.name} still handling {self.in_flight} request(s)")

    def _take(self, knobs: list[tuple[str | None, float, int]], method: str) -> float:
        for index, (only, seconds, left) in enumerate(knobs):
            if only in (None, method) and left:
                if left > 0:
                    knobs[index] = (only, seconds, left - 1)
                return seconds
        return 0.0

    def reset_knobs(self) -> None:
        with self.lock:
            self._faults.clear()
            self._trickle.clear()
            self._late.clear()
            self.delay, self.delay_next, self.delay_method = 0.0, 0, None

    def rate_limit_body(self) -> dict[str, Any]:
        return {"message": "rate limited"}

    # --- inspection --------------------------------------------------------------------------

    def calls(self, method: str | None = None, contains: str = "") -> list[Recorded]:
        with self.lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method) and contains in r.path
            ]

    def clear_log(self) -> None:
        with self.lock:
            self.requests.clear()

    def state(self) -> dict[str, Any]:
        raise NotImplementedError

    def dump(self) -> None:
        if self.state_file is not None:
            with self.lock:
                text = json.dumps(self.state(), indent=2, sort_keys=True, default=str)
            self.state_file.write_text(text + "\n")

    # --- transport ---------------------------------------------------------------------------

    def route(
        self, method: str, path: str, query: dict[str, str], body: Any, headers: dict[str, str]
    ) -> Reply:
        raise NotImplementedError

    def _control(self, method: str, path: str, body: Any) -> Reply:
        if path == "/_fake/state":
            with self.lock:
                return 200, {}, self.state()
        if path == "/_fake/dump" and method == "POST":
            self.dump()
            return 200, {}, {"dumped": str(self.state_file) if self.state_file else None}
        if path == "/_fake/knobs" and method == "POST" and isinstance(body, dict):
            if "fail_next" in body:
                self.fail_next(int(body["fail_next"]), int(body.get("status", 502)))
            if "rate_limit_next" in body:
                self.rate_limit_next(
                    int(body["rate_limit_next"]), retry_after=body.get("retry_after", 2)
                )
            if "delay" in body:
                self.slow(float(body["delay"]), body.get("count"))
            if "trickle" in body:
                self.trickle(float(body["trickle"]), body.get("count"))
            if "apply_late" in body:
                self.apply_late(float(body["apply_late"]), int(body.get("count", 1)))
            if body.get("reset"):
                self.reset_knobs()
            return 200, {}, {"ok": True}
        if path == "/_fake/pull" and method == "POST" and isinstance(body, dict):
            # A push to the pull request's branch: the same PR, a new head (and its comments).
            extra = {"head_repo": str(body["head_repo"])} if body.get("head_repo") else {}
            self.add_pull(  # type: ignore[attr-defined]
                str(body["repo"]), int(body["number"]), head_sha=str(body["head_sha"]), **extra
            )
            return 200, {}, {"ok": True}
        return 404, {}, {"message": "unknown control endpoint"}

    def _dispatch(self, handler: BaseHTTPRequestHandler) -> None:
        with self.lock:
            self.in_flight += 1
        try:
            self._handle(handler)
        finally:
            with self.lock:
                self.in_flight -= 1

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in handler.headers.items()}
        body: Any = None
        status: int
        reply_headers: dict[str, str]
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        record = Recorded(handler.command, parts.path, query, body)
        delay = trickle = late = 0.0
        if parts.path.startswith("/_fake/"):
            status, reply_headers, payload = self._control(handler.command, parts.path, body)
        else:
            with self.lock:
                self.requests.append(record)
                fault = None
                for index, (only, reply) in enumerate(self._faults):
                    if only in (None, handler.command):
                        fault = reply
                        del self._faults[index]
                        break
                if self.delay_next and self.delay_method in (None, handler.command):
                    delay = self.delay
                    if self.delay_next > 0:
                        self.delay_next -= 1
                trickle = self._take(self._trickle, handler.command)
                late = self._take(self._late, handler.command)
            if late:
                time.sleep(late)
            if fault is not None:
                status, reply_headers, payload = fault
            else:
                try:
                    status, reply_headers, payload = self.route(
                        handler.command, parts.path, query, body, headers
                    )
                except Exception as exc:  # a fake bug must show up in the test, not hang it
                    with self.lock:
                        self.violations.append(
                            f"fake crashed on {handler.command} {parts.path}: {exc!r}"
                        )
                    status, reply_headers, payload = 500, {}, {"message": f"fake crashed: {exc!r}"}
        if delay:
            time.sleep(delay)
        record.status = status
        data = b"" if payload is None else json.dumps(payload).encode()
        if trickle:
            self._trickle_out(handler, status, reply_headers, data, trickle)
            return
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json; charset=utf-8")
            handler.send_header("Content-Length", str(len(data)))
            for key, value in reply_headers.items():
                handler.send_header(key, value)
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (a timeout test)

    def _trickle_out(
        self,
        handler: BaseHTTPRequestHandler,
        status: int,
        headers: dict[str, str],
        data: bytes,
        seconds_per_byte: float,
    ) -> None:
        lines = [f"HTTP/1.1 {status} {handler.responses.get(status, ('',))[0]}"]
        lines += ["Content-Type: application/json; charset=utf-8", f"Content-Length: {len(data)}"]
        lines += ["Connection: close"]  # this handler hangs up after the last byte
        lines += [f"{key}: {value}" for key, value in headers.items()]
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data
        handler.close_connection = True
        try:
            for index in range(len(raw)):
                handler.wfile.write(raw[index : index + 1])
                handler.wfile.flush()
                time.sleep(seconds_per_byte)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, as it should


def serve_main(cls: type[FakeForge], argv: list[str] | None = None) -> int:
    """`python -m tests.fakes.<forge> --port N --state-file F`: serve until interrupted."""
    parser = argparse.ArgumentParser(description=f"loopback fake {cls.name} API")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--state-file", type=Path, help="dump the state here on exit and on POST /_fake/dump"
    )
    parser.add_argument(
        "--token",
        action="append",
        default=[],
        metavar="TOKEN=LOGIN",
        help="accept TOKEN as user LOGIN (repeatable)",
    )
    parser.add_argument(
        "--pull",
        action="append",
        default=[],
        metavar="REPO#N@SHA",
        help="seed an open pull/merge request N of REPO whose head is SHA (repeatable)",
    )
    parser.add_argument(
        "--permission",
        action="append",
        default=[],
        metavar="LOGIN=LEVEL",
        help="LOGIN's access to every repository (GitHub: admin, write, read...; repeatable)",
    )
    args = parser.parse_args(argv)
    fake = cls(args.host, args.port, state_file=args.state_file)
    for item in args.permission:
        login, _, level = item.partition("=")
        fake.set_permission(login, level)  # type: ignore[attr-defined]
    for item in args.token:
        token, _, login = item.partition("=")
        fake.add_token(token, login or "mlops-ci-bot")  # type: ignore[attr-defined]
    for item in args.pull:
        repo, _, rest = item.partition("#")
        number, _, sha = rest.partition("@")
        fake.add_pull(repo, int(number), head_sha=sha)  # type: ignore[attr-defined]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    fake.start()
    print(fake.url, flush=True)
    try:
        while not stop.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    fake.stop()
    print(f"fake {cls.name} stopped", file=sys.stderr)
    return 0
