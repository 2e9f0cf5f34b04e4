"""The one HTTP session every forge uses: timeouts, retries, rate limits, typed errors.

Retries: connection errors and 5xx, with exponential backoff and full jitter. Rate limits (403
or 429 with `retry-after`, `x-ratelimit-reset` or GitLab's `ratelimit-reset`): wait as asked,
unless that is longer than MLOPS_CI_MAX_WAIT, in which case fail at once with a message rather
than sleep through the job's time limit. Any other 4xx is final. The token lives only in the
request headers: never in URLs, reprs, logs or error messages.

Timeouts: MLOPS_CI_HTTP_TIMEOUT bounds a whole request, connect to last byte. requests' own
timeout is per socket read, so an answer trickling one byte a second, status line and headers
included, never trips it, and a streamed read cannot check a clock before the headers are in.
So each attempt runs in a daemon thread that is waited for only until the deadline; one still
running then counts as timed out and is left behind (its per-read timeout ends it once the server
stalls, process exit ends it otherwise). A request that timed out is sent again only when sending
it twice is harmless (GET, PUT, PATCH... and POSTs the caller marks so).
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from mlops_ci.forge.errors import (
    ForgeAuthFailed,
    ForgeError,
    ForgeNotFound,
    ForgeRateLimited,
    ForgeRejected,
    ForgeUnavailable,
)
from mlops_ci.project.errors import ConfigError

log = logging.getLogger("mlops_ci.forge")

# GitHub's advice for a secondary rate limit that names no wait: "wait at least one minute".
SECONDARY_LIMIT_WAIT = 60.0
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"})


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 7  # 1 try + 6 retries: rides out a burst of 5 bad gateways
    base: float = 1.0  # seconds; the n-th retry waits up to base * 2**n (full jitter)
    max_wait: float = 60.0  # the longest single wait, backoff or rate limit
    timeout: float = 30.0  # the whole of one request: connect, send, every byte of the answer

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RetryPolicy:
        """MLOPS_CI_RETRIES, MLOPS_CI_RETRY_BASE, MLOPS_CI_MAX_WAIT, MLOPS_CI_HTTP_TIMEOUT."""
        default = cls()

        def number(name: str, fallback: float) -> float:
            raw = env.get(name, "").strip()
            if not raw:
                return fallback
            try:
                value = float(raw)
            except ValueError:
                value = -1.0
            if value < 0:
                raise ConfigError(f"{name}={raw!r} is not a non-negative number of seconds/tries")
            return value

        return cls(
            attempts=1 + int(number("MLOPS_CI_RETRIES", default.attempts - 1)),
            base=number("MLOPS_CI_RETRY_BASE", default.base),
            max_wait=number("MLOPS_CI_MAX_WAIT", default.max_wait),
            timeout=number("MLOPS_CI_HTTP_TIMEOUT", default.timeout) or default.timeout,
        )

    def backoff(self, retry: int) -> float:
        return min(self.max_wait, random.uniform(0, self.base * 2**retry))


def forge_message(response: requests.Response) -> str:
    """The forge's own explanation: GitHub `message` + `errors`, GitLab `message`/`error`."""
    try:
        data = response.json()
    except ValueError:
        return (response.text or response.reason or "").strip()[:300]
    if not isinstance(data, dict):
        return str(data)[:300]
    parts = []
    for key in ("message", "error", "error_description"):
        value = data.get(key)
        if value:
            parts.append(value if isinstance(value, str) else repr(value))
    for err in data.get("errors") or []:
        if isinstance(err, dict) and err.get("message"):
            parts.append(str(err["message"]))
        elif isinstance(err, str):
            parts.append(err)
    return "; ".join(parts)[:500]


def _header_wait(headers: Mapping[str, str], now: float) -> float | None:
    retry_after = headers.get("retry-after")
    if retry_after:
        if retry_after.strip().isdigit():
            return float(retry_after)
        parsed = email.utils.parsedate_to_datetime(retry_after)
        if parsed is not None:
            return max(0.0, parsed.timestamp() - now)
    remaining = headers.get("x-ratelimit-remaining") or headers.get("ratelimit-remaining")
    reset = headers.get("x-ratelimit-reset") or headers.get("ratelimit-reset")
    if reset and reset.strip().isdigit() and remaining == "0":
        return max(1.0, float(reset) - now + 1)
    return None


def _is_rate_limit(response: requests.Response, message: str) -> bool:
    if response.status_code == 429:
        return True
    return response.status_code == 403 and (
        "retry-after" in response.headers
        or response.headers.get("x-ratelimit-remaining") == "0"
        or "rate limit" in message.lower()
    )


class ForgeSession:
    """Requests against one forge API base URL with one token."""

    def __init__(
        self,
        base_url: str,
        *,
        forge: str,
        token: str | None,
        auth_header: str = "Authorization",
        auth_prefix: str = "Bearer ",
        policy: RetryPolicy | None = None,
        session: requests.Session | None = None,
        extra_headers: Mapping[str, str] | None = None,
        hints: Mapping[int, str] | None = None,
    ):
        self.base_url = base_url.rstrip("/") + "/"
        self.forge = forge
        self.policy = policy or RetryPolicy()
        self.session = session or requests.Session()
        self.calls = 0  # requests sent, retries included (tests bound it)
        self._token = token or ""
        self._headers = dict(extra_headers or {})
        if token:
            self._headers[auth_header] = auth_prefix + token
        self._hints = dict(hints or {})
        self._origin = urlsplit(self.base_url)[:2]

    def __repr__(self) -> str:
        return f"ForgeSession(forge={self.forge!r}, base_url={self.base_url!r}, token=<hidden>)"

    @property
    def has_token(self) -> bool:
        return bool(self._token)

    def redact(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    def url(self, path: str) -> str:
        url = urljoin(self.base_url, path.lstrip("/")) if not path.startswith("http") else path
        # The token goes only to the configured API host, whatever a Link header says.
        if urlsplit(url)[:2] != self._origin:
            raise ForgeRejected(
                f"{self.forge} API pointed at another host ({url}); refusing to send the token there"
            )
        return url

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        repeatable: bool = False,
    ) -> requests.Response:
        """Send with retries; return the 2xx response or raise a ForgeError subclass.

        `repeatable`: a POST that may be sent again after a timeout because applying it twice
        is harmless (a commit status: the newest of a context is the one shown).
        """
        method = method.upper()
        url = self.url(path)
        where = f"{method} {urlsplit(url).path}"
        policy = self.policy
        last = ""
        for attempt in range(policy.attempts):
            self.calls += 1
            try:
                response = self._send(method, url, params=params, json=json)
            except requests.RequestException as exc:
                # Refused or a connect timeout: never reached the forge. A timeout or an answer
                # cut off midway (ChunkedEncodingError): may have been applied.
                cut_off = (requests.Timeout, requests.exceptions.ChunkedEncodingError)
                if isinstance(exc, requests.ConnectionError):
                    last = f"could not connect ({type(exc).__name__})"
                elif not isinstance(exc, cut_off):
                    raise
                elif method not in IDEMPOTENT and not repeatable:
                    # The forge may have applied it: the caller decides (upsert looks again).
                    raise ForgeUnavailable(
                        f"{self.forge} API: {where} timed out after {policy.timeout:g} s; it may "
                        "or may not have been applied",
                        forge_message="timeout",
                    ) from exc
                else:
                    last = f"timed out after {policy.timeout:g} s"
            else:
                if response.status_code < 400:
                    return response
                message = self.redact(forge_message(response))
                status = response.status_code
                if _is_rate_limit(response, message):
                    wait = _header_wait(response.headers, time.time())
                    if wait is None:
                        wait = (
                            min(SECONDARY_LIMIT_WAIT, policy.max_wait)
                            if status == 403
                            else policy.backoff(attempt)
                        )
                    if wait > policy.max_wait:
                        raise ForgeRateLimited(
                            f"{self.forge} API rate limit on {where}: asked to wait {wait:.0f} s, "
                            f"more than MLOPS_CI_MAX_WAIT={policy.max_wait:g} s. Rerun later or "
                            f"raise MLOPS_CI_MAX_WAIT. {self.forge} said: {message}",
                            status=status,
                            forge_message=message,
                        )
                    last = f"rate limited ({status}): {message}"
                    if attempt + 1 < policy.attempts:
                        log.warning("%s API %s: %s; waiting %.1f s", self.forge, where, last, wait)
                        time.sleep(wait)
                    continue
                if status < 500:
                    raise self._client_error(where, status, message)
                last = f"answered {status}: {message}"
            if attempt + 1 < policy.attempts:
                wait = policy.backoff(attempt)
                log.warning(
                    "%s API %s %s; retry %d of %d in %.2f s",
                    self.forge,
                    where,
                    last,
                    attempt + 1,
                    policy.attempts - 1,
                    wait,
                )
                time.sleep(wait)
        error = ForgeRateLimited if last.startswith("rate limited") else ForgeUnavailable
        raise error(
            f"{self.forge} API: {where} failed after {policy.attempts} attempts, last: {last}. "
            "The report is still in the run directory and the job summary.",
            forge_message=last,
        )

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One attempt, connect to last byte within the policy's timeout, else ReadTimeout."""
        outcome: list[requests.Response | Exception] = []

        def attempt() -> None:
            try:
                answer = self.session.request(
                    method, url, headers=self._headers, timeout=self.policy.timeout, **kwargs
                )
            except Exception as exc:  # raised again in the waiting thread
                outcome.append(exc)
            else:
                outcome.append(answer)

        worker = threading.Thread(target=attempt, name="mlops-ci-http", daemon=True)
        started = time.monotonic()
        worker.start()
        worker.join(self.policy.timeout)
        result = outcome[0] if outcome else None
        if isinstance(result, requests.Response):
            return result
        if result is not None and time.monotonic() - started < self.policy.timeout:
            raise result
        # Past the deadline, whatever the attempt did or still does (a stalled body read ends
        # as a ConnectionError), the request timed out.
        raise requests.ReadTimeout(f"no whole answer within {self.policy.timeout:g} s") from result

    def _client_error(self, where: str, status: int, message: str) -> ForgeError:
        hint = self._hints.get(status, "")
        text = f"{self.forge} API: {where} answered {status}: {message or 'no message'}"
        text = f"{text}. {hint}" if hint else text
        cls = {401: ForgeAuthFailed, 403: ForgeAuthFailed, 404: ForgeNotFound}.get(
            status, ForgeRejected
        )
        return cls(text, status=status, forge_message=message)

    def request_json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        require: Collection[str] = (),
        repeatable: bool = False,
    ) -> Any:
        """`request`, then the body as JSON: an object holding every key in `require`."""
        response = self.request(method, path, params=params, json=json, repeatable=repeatable)
        return self.decode(response, require)

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.request_json("GET", path, params=params)

    def decode(self, response: requests.Response, require: Collection[str] = ()) -> Any:
        """The JSON body of a 2xx answer. A body that is not JSON (an API URL that points at a
        web page answers 200 with HTML) or lacks a key we need is the forge refusing us, not a
        bug of ours: ForgeRejected, naming the request but never the token."""
        where = f"{response.request.method} {urlsplit(response.url).path}"
        try:
            data = response.json()
        except ValueError:
            kind = (response.headers.get("content-type") or "no content type")[:100]
            raise ForgeRejected(
                self.redact(
                    f"{self.forge} API: {where} answered {response.status_code} with a body that is "
                    f"not JSON ({kind}); check that the API URL ({self.base_url}) is the "
                    f"{self.forge} REST API, not a web page"
                ),
                status=response.status_code,
            ) from None
        missing = [k for k in require if not isinstance(data, dict) or k not in data]
        if missing:
            raise ForgeRejected(
                self.redact(
                    f"{self.forge} API: {where} answered {response.status_code} without "
                    f"{', '.join(missing)}; check that the API URL ({self.base_url}) is the "
                    f"{self.forge} REST API"
                ),
                status=response.status_code,
            )
        return data

    def pages(self, path: str, params: Mapping[str, Any] | None = None) -> Iterator[list[Any]]:
        """Each page of a list endpoint: follows `Link: rel="next"`, else GitLab's X-Next-Page."""
        query: dict[str, Any] | None = {"per_page": 100, **(params or {})}
        url: str | None = path
        while url is not None:
            response = self.request("GET", url, params=query)
            data = self.decode(response)
            yield data if isinstance(data, list) else []
            next_link = response.links.get("next", {}).get("url")
            next_page = response.headers.get("x-next-page", "").strip()
            if next_link:
                url, query = next_link, None  # the link already carries every parameter
            elif next_page.isdigit() and query is not None:
                query = {**query, "page": int(next_page)}
            else:
                url = None
