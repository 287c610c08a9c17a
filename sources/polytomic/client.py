"""HTTP client for the Polytomic REST API: auth, version header, retries, pagination.

Retries come from dlt's requests helper (429, 5xx, resets, timeouts; `Retry-After` honoured).
On top of it sit a shared rate gate, so one 429 slows every thread, a cap on how long a
`Retry-After` may ask us to sleep, a deadline per attempt (`timeout_seconds` from sending the
request to the body's last byte, not per socket read), and a cancel event that ends waits and
back-off sleeps at once. The credential only travels encrypted or to loopback: plain http goes
direct (no proxy from the environment), and redirects are followed only within the origin.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import SplitResult, urljoin, urlsplit

import orjson
import urllib3.exceptions as u3
from dlt.sources.helpers.requests import Client
from requests import PreparedRequest, RequestException, Response, exceptions
from requests.adapters import HTTPAdapter

from . import settings
from .errors import (
    ApiError,
    AuthError,
    BadRequest,
    ConfigError,
    MalformedResponse,
    NotFound,
    PaginationError,
    RateLimitTooLong,
    redact,
)

log = logging.getLogger("polytomic_etl")


def auth_header(
    api_key: str | None, deployment_key: str | None, organization_id: str | None
) -> str:
    """`api_key` is sent as Bearer; `deployment_key` + `organization_id` as Basic auth."""
    # A key pasted into secrets.toml or an env file often carries a newline or spaces.
    api_key, deployment_key, organization_id = (
        (v or "").strip() or None for v in (api_key, deployment_key, organization_id)
    )
    if api_key:
        return f"Bearer {api_key}"
    if deployment_key and organization_id:
        # The Terraform provider's form: username = organization id, password = the key.
        raw = f"{organization_id}:{deployment_key}".encode()
        return "Basic " + base64.b64encode(raw).decode()
    if deployment_key:
        raise ConfigError(
            "deployment_key needs organization_id: set sources.polytomic.organization_id "
            "(env SOURCES__POLYTOMIC__ORGANIZATION_ID)"
        )
    raise ConfigError(
        "no credentials: set sources.polytomic.api_key (env SOURCES__POLYTOMIC__API_KEY), "
        "or deployment_key + organization_id"
    )


def check_base_url(base_url: str) -> str:
    """Refuse plain http unless it points at loopback; TLS verification always stays on."""
    base_url = base_url.strip()
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"base_url must be an http(s) URL, got {base_url!r}")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise ConfigError(f"refusing plain-http base_url {base_url!r}: use https")
    return base_url.rstrip("/")


def _loopback(host: str | None) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


class Cancelled(RateLimitTooLong):
    """The run was asked to stop (SIGTERM, Ctrl-C): no new request goes out, no wait goes on.

    A `RateLimitTooLong` so that every caller treats it as the end of the run, never as the
    failure of one sync or one execution.
    """

    exit_code = 5


MAX_REDIRECTS = 5
_READ_CHUNK = 256 * 1024


class DeadlineAdapter(HTTPAdapter):
    """A deadline for a whole attempt: from sending the request to the body's last byte.

    `requests` applies its timeout to each socket read, so a server sending one byte every
    half second never times out. The body is read here in chunks, each read given at most the
    time left; past the deadline the attempt ends with `ReadTimeout`, which dlt's retry
    treats like any other timeout.
    """

    def __init__(self, deadline: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.deadline = deadline

    def send(  # type: ignore[override]
        self, request: PreparedRequest, stream: bool = False, **kwargs: Any
    ) -> Response:
        ends = time.monotonic() + self.deadline
        response = self._headers(request, **kwargs)
        if stream:
            return response
        try:
            response._content = self._read(response, ends)
        except BaseException:
            response.close()
            raise
        response._content_consumed = True
        return response

    def _headers(self, request: PreparedRequest, **kwargs: Any) -> Response:
        """Status line and headers, within the deadline even if they trickle in.

        They are read per socket read by `http.client`, so the wait happens in a daemon
        thread; past the deadline the attempt is given up and that thread is left to die
        with its socket's own read timeout.
        """
        outcome: list[Any] = []

        def attempt() -> None:
            try:
                outcome.append(HTTPAdapter.send(self, request, stream=True, **kwargs))
            except BaseException as exc:  # handed to the caller's thread
                outcome.append(exc)

        worker = threading.Thread(target=attempt, name="http-attempt", daemon=True)
        worker.start()
        worker.join(self.deadline)
        if not outcome:
            raise exceptions.ReadTimeout(
                f"timed out: no answer within {self.deadline:g}s (timeout_seconds)", request=request
            )
        if isinstance(outcome[0], BaseException):
            raise outcome[0]
        response: Response = outcome[0]
        return response

    def _read(self, response: Response, ends: float) -> bytes:
        raw, chunks = response.raw, []
        late = exceptions.ReadTimeout(
            f"timed out: no complete answer within {self.deadline:g}s (timeout_seconds)",
            request=response.request,
        )
        while True:
            left = ends - time.monotonic()
            if left <= 0:
                raise late
            sock = getattr(getattr(raw, "connection", None), "sock", None)
            if sock is not None:
                sock.settimeout(left)  # urllib3 resets it for the connection's next request
            try:
                chunk = raw.read1(_READ_CHUNK, decode_content=True)
            except u3.ReadTimeoutError:  # the rest maps as requests' own iter_content does
                raise late from None
            except u3.ProtocolError as exc:
                raise exceptions.ChunkedEncodingError(exc) from None
            except u3.DecodeError as exc:
                raise exceptions.ContentDecodingError(exc) from None
            except u3.SSLError as exc:
                raise exceptions.SSLError(exc) from None
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


class _Http(Client):
    """dlt's retrying client with a deadline per attempt and back-off that `cancel` ends."""

    def __init__(self, deadline: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._adapter = DeadlineAdapter(deadline, pool_maxsize=50)
        self.cancel = threading.Event()

    def _make_session(self) -> Any:
        session = super()._make_session()
        retrying = getattr(session.send, "retry", None)  # tenacity's `Retrying` of this session
        if retrying is not None:
            retrying.sleep = self.sleep
        return session

    def sleep(self, seconds: float) -> None:
        if self.cancel.wait(seconds):
            raise Cancelled("the run was interrupted")


class RateGate:
    """One 429 pauses every worker thread until the server's `Retry-After` has passed."""

    def __init__(self, max_wait: float) -> None:
        self.max_wait = max_wait
        self._until = 0.0
        self._lock = threading.Lock()

    def on_response(self, response: Response, *args: Any, **kwargs: Any) -> Response:
        if response.status_code == 429:
            wait = _retry_after_seconds(response.headers.get("Retry-After"))
            if wait is not None and wait > self.max_wait:
                raise RateLimitTooLong(
                    f"the API asked us to wait {wait:.0f}s (Retry-After), more than "
                    f"max_retry_after_seconds={self.max_wait:.0f}; stopping instead of "
                    "sleeping through the next scheduled run",
                    status=429,
                )
            with self._lock:
                self._until = max(self._until, time.monotonic() + (wait or 1.0))
        return response

    def wait(self, cancel: threading.Event | None = None) -> None:
        with self._lock:
            delay = self._until - time.monotonic()
        if delay > 0 and (cancel or threading.Event()).wait(delay):
            raise Cancelled("the run was interrupted")


def _retry_after_seconds(value: str | None) -> float | None:
    """`Retry-After` is seconds or an HTTP date; both count against the cap."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass
class Page:
    """One page of a list endpoint: its rows, the token that fetched it and the next token."""

    items: list[Any]
    token: str | None
    next_token: str | None


@dataclass
class Paginator:
    """Follows `pagination.next_page_token`; a token seen twice is an error, not a loop."""

    seen: set[str] = field(default_factory=set)

    def advance(self, body: dict[str, Any]) -> str | None:
        pagination = body.get("pagination")
        token = pagination.get("next_page_token") if isinstance(pagination, dict) else None
        if not token:  # absent key, null and "" all mean the last page
            return None
        if not isinstance(token, str):
            raise MalformedResponse(f"next_page_token is not a string: {type(token).__name__}")
        if token in self.seen:
            raise PaginationError("the API returned a page token it had already returned")
        self.seen.add(token)
        return token


class PolytomicClient:
    """Thread-safe: dlt's `Client` keeps one retrying session per thread."""

    def __init__(
        self,
        base_url: str,
        authorization: str,
        api_version: str = settings.DEFAULT_API_VERSION,
        timeout: float = settings.DEFAULT_TIMEOUT_SECONDS,
        max_attempts: int = settings.DEFAULT_MAX_ATTEMPTS,
        backoff_factor: float = 1.0,
        max_retry_after: float = settings.DEFAULT_MAX_RETRY_AFTER_SECONDS,
        secrets: Sequence[str | None] = (),
    ) -> None:
        self.base_url = check_base_url(base_url)
        # Every form a credential could be echoed in: the header value and the raw secrets.
        self._secrets = [authorization.split(" ", 1)[-1], *(s for s in secrets if s)]
        self.gate = RateGate(max_retry_after)
        headers = {
            "Authorization": authorization,
            "X-Polytomic-Version": api_version,
            "Accept": "application/json",
            "User-Agent": "polytomic-etl",
        }
        hooks = {"response": [self.gate.on_response]}
        session: dict[str, Any] = {"headers": headers, "hooks": hooks}
        if urlsplit(self.base_url).scheme == "http":
            # Loopback only (checked above): never through HTTP_PROXY, which would see the key.
            session["trust_env"] = False
        self._http = _Http(
            timeout,
            request_timeout=timeout,
            raise_for_status=False,
            request_max_attempts=max_attempts,
            request_backoff_factor=backoff_factor,
            request_max_retry_delay=max_retry_after,
            session_attrs=session,
        )
        self.requests: Counter[str] = Counter()
        self.served_version: str | None = None
        self.max_empty_pages = settings.DEFAULT_MAX_EMPTY_PAGES
        self._count_lock = threading.Lock()
        self._server_clock: tuple[datetime, float] | None = None

    @property
    def cancel(self) -> threading.Event:
        """Once set, no request is sent and every wait or back-off ends with `Cancelled`."""
        return self._http.cancel

    @cancel.setter
    def cancel(self, event: threading.Event) -> None:
        self._http.cancel = event

    def present(self) -> datetime:
        """The earlier of the local clock and the server's (its last `Date` header, aged).

        A cursor never runs ahead of this, so one execution stamped by a fast clock cannot
        push the cursor past the rows that later commit with a correct one.
        """
        local = datetime.now(UTC)
        with self._count_lock:
            seen = self._server_clock
        if seen is None:
            return local
        server = seen[0] + timedelta(seconds=time.monotonic() - seen[1])
        return min(local, server)

    def _observe_date(self, response: Response) -> None:
        value = response.headers.get("Date")
        if not value:
            return
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return
        if when.tzinfo is None:
            return
        with self._count_lock:
            self._server_clock = (when.astimezone(UTC), time.monotonic())

    def get(self, path: str, params: dict[str, Any] | None = None, kind: str = "other") -> Any:
        """GET a JSON body; raise a typed, redacted error for anything but 200."""
        if self.cancel.is_set():
            raise Cancelled("the run was interrupted")
        with self._count_lock:
            self.requests[kind] += 1
        self.gate.wait(self.cancel)
        try:
            response = self._fetch(path, params)
        except RequestException as exc:  # resets and timeouts left after dlt's retries
            cause = _unreachable(exc, self.base_url)
            detail = cause or redact(f"{type(exc).__name__}: {exc}", self._secrets)
            raise ApiError(f"GET {path}: {detail}") from None
        self.served_version = response.headers.get("X-Polytomic-Version", self.served_version)
        self._observe_date(response)
        if response.status_code != 200:
            raise self._error(response, path)
        try:
            return orjson.loads(response.content)  # about twice as fast as json on big pages
        except orjson.JSONDecodeError:
            pass
        try:
            return response.json()  # what orjson refuses (e.g. integers beyond 64 bits)
        except ValueError:
            raise MalformedResponse(
                f"GET {path}: HTTP 200 but the body is not JSON: {self._snippet(response)}"
            ) from None

    def _fetch(self, path: str, params: dict[str, Any] | None) -> Response:
        """GET, following redirects only within the base URL's origin (same host and port)."""
        url = self.base_url + path
        for _ in range(MAX_REDIRECTS + 1):
            response = self._http.get(url, params=params, allow_redirects=False)
            if not response.is_redirect:
                return response
            url, params = urljoin(url, response.headers["Location"]), None
            _check_redirect(path, urlsplit(self.base_url), urlsplit(url))
        raise ApiError(f"GET {path}: more than {MAX_REDIRECTS} redirects")

    def _snippet(self, response: Response) -> str:
        return redact(response.text or "", self._secrets)

    def _error(self, response: Response, path: str) -> ApiError:
        code = response.status_code
        message = _error_message(response) or self._snippet(response)
        message = redact(message, self._secrets)
        if code in (401, 403):
            return AuthError(f"authentication failed (HTTP {code}): {message}")
        if code == 404:
            return NotFound(f"GET {path}: not found", status=404)
        if code == 400:
            return BadRequest(f"GET {path}: HTTP 400: {message}", status=400)
        return ApiError(f"GET {path}: HTTP {code} after retries: {message}", status=code)

    def pages(
        self, path: str, params: dict[str, Any], kind: str, token: str | None = None
    ) -> Iterator[Page]:
        """Yield pages of a list endpoint, starting from `token` when given.

        The end-of-list shape is UNVERIFIED: a server that filters after paging may send an
        empty page with a valid token mid-list, or empty pages without end. After an empty
        page its token is followed at most `max_empty_pages` times in a row, and never when it
        was seen before in this walk; then the list is treated as ended, with a warning.
        """
        paginator = Paginator()
        empty_run = 0
        while True:
            query = dict(params, page_token=token) if token else params
            body = self.get(path, query, kind=kind)
            if not isinstance(body, dict):
                raise MalformedResponse(f"GET {path}: expected a JSON object envelope")
            data = body.get("data")
            if data is None:  # the API sends `data: null` on empty pages
                data = []
            if not isinstance(data, list):
                raise MalformedResponse(f"GET {path}: `data` is {type(data).__name__}, not a list")
            empty_run = 0 if data else empty_run + 1
            next_token = self._next_token(paginator, body, path, empty=not data)
            if next_token and empty_run > self.max_empty_pages:
                log.warning(
                    "GET %s: %d empty pages in a row still carried a token; treating the list "
                    "as ended",
                    path,
                    empty_run,
                )
                next_token = None
            yield Page(items=data, token=token, next_token=next_token)
            if next_token is None:
                return
            token = next_token

    @staticmethod
    def _next_token(paginator: Paginator, body: dict[str, Any], path: str, empty: bool) -> Any:
        try:
            return paginator.advance(body)
        except PaginationError:
            if not empty:
                raise  # rows under a repeated token would be read again without end
            log.warning("GET %s: an empty page repeated an earlier token; list ended", path)
            return None

    def list_syncs(self, active: bool | None = None) -> list[dict[str, Any]]:
        # The docs say this list paginates (50 per page) but the SDK model says it does not:
        # follow a token when one comes back.
        params: dict[str, Any] = {} if active is None else {"active": str(active).lower()}
        syncs: list[dict[str, Any]] = []
        for page in self.pages(settings.SYNCS_PATH, params, kind="list_syncs"):
            syncs.extend(page.items)
        return syncs

    def get_execution(self, sync_id: str, execution_id: str) -> dict[str, Any]:
        path = settings.EXECUTION_PATH.format(sync_id=sync_id, execution_id=execution_id)
        body = self.get(path, kind="get_execution")
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise MalformedResponse(f"GET {path}: `data` is not an object")
        return data


def _check_redirect(path: str, base: SplitResult, target: SplitResult) -> None:
    """The credential goes only where base_url points: same host and port, never plain http
    off loopback. Anything else is refused, so no header is ever sent across hosts."""
    try:
        port = target.port
    except ValueError:
        port = -1  # an unparsable port is never the base URL's
    where = f"{target.scheme}://{target.hostname}" + (f":{port}" if port else "")
    if target.scheme not in ("http", "https") or (
        target.scheme == "http" and not _loopback(target.hostname)
    ):
        raise ConfigError(f"GET {path}: refusing a redirect to {where}: not https")
    ports = {"http": 80, "https": 443}
    if (target.hostname, port or ports[target.scheme]) != (
        base.hostname,
        base.port or ports[base.scheme],
    ):
        raise ConfigError(
            f"GET {path}: the server redirects to another host ({where}); the credentials are "
            "not sent there: point base_url at it"
        )


def _error_message(response: Response) -> str | None:
    """Read ApiError `{status, message, key, metadata}`, or the older `error` shapes."""
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    for candidate in (body.get("message"), body.get("error")):
        if isinstance(candidate, str) and candidate:
            return candidate
        if isinstance(candidate, dict) and isinstance(candidate.get("message"), str):
            return candidate["message"]
    return json.dumps(body)  # redacted, then truncated, by the caller


_DNS_FAILURES = ("name or service not known", "failure in name resolution", "nodename nor")


def _unreachable(exc: RequestException, base_url: str) -> str | None:
    """Connection refused or an unknown host, said first instead of urllib3's retry story."""
    if not isinstance(exc, exceptions.ConnectionError) or isinstance(exc, exceptions.SSLError):
        return None
    text = str(exc).lower()
    parts = urlsplit(base_url)
    where = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
    base_url = redact(base_url, limit=None)
    if "refused" in text:
        return f"connection refused by {where}: is base_url {base_url} right and the API up?"
    if any(marker in text for marker in _DNS_FAILURES):
        return f"cannot resolve host {parts.hostname}: check base_url {base_url}"
    return None
