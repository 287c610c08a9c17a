"""HTTP plumbing: a threaded HTTP/1.1 keep-alive server and the per-request flow.

Per API request: log it, run hooks (they may mutate data), apply latency and any fault,
check auth, compute the response. Each response goes out in a single write with
``Content-Length`` and ``TCP_NODELAY`` set, so Nagle and delayed ACKs cost nothing. Every
response carries ``X-Polytomic-Version`` and (unless switched off) a ``Date`` from the
sandbox clock.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from datetime import timedelta
from email.utils import format_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from .api import Response, api_error, unauthorized
from .faults import Fault
from .records import dumps

if TYPE_CHECKING:
    from .sandbox import Sandbox

ADMIN_PREFIX = "/_sandbox/"
HTML_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, SandboxHandler)

    def track(self, sock: socket.socket, add: bool) -> None:
        with self._connections_lock:
            (self._connections.add if add else self._connections.discard)(sock)

    def close_connections(self) -> None:
        """Wake threads parked on idle keep-alive connections so they exit."""
        with self._connections_lock:
            live = list(self._connections)
        for sock in live:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class SandboxHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "polytomic-sandbox"
    server: SandboxHTTPServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def do_GET(self) -> None:
        serve(self)

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log."""

    def send(self, response: Response, version: str, trickle: float | None = None) -> None:
        """Write the response in one go, or its body one byte every ``trickle`` seconds."""
        try:
            phrase = HTTPStatus(response.status).phrase
        except ValueError:
            phrase = "Unknown"
        lines = [
            f"HTTP/1.1 {response.status} {phrase}",
            f"Content-Type: {response.content_type}",
            f"Content-Length: {len(response.body)}",
            f"X-Polytomic-Version: {version}",
        ]
        date = self.date_value()
        if date and not any(key.lower() == "date" for key in response.headers):
            lines.append(f"Date: {date}")
        lines += [f"{key}: {value}" for key, value in response.headers.items()]
        if self.close_connection:
            lines.append("Connection: close")
        elif self.request_version == "HTTP/1.0":
            lines.append("Connection: keep-alive")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        if trickle is not None and self.command != "HEAD":
            self.trickle(head, response.body, trickle)
            return
        self.wfile.write(head if self.command == "HEAD" else head + response.body)

    def trickle(self, head: bytes, body: bytes, seconds: float) -> None:
        """The head at once, then one byte per ``seconds``; stops when the client leaves."""
        try:
            self.wfile.write(head)
            for index in range(len(body)):
                if self.server.stopping.wait(seconds):
                    self.close_connection = True
                    return
                self.wfile.write(body[index : index + 1])
        except OSError:  # the client gave up: the line is gone
            self.close_connection = True

    def date_value(self) -> str | None:
        """RFC 7231 ``Date`` from the sandbox clock plus ``date_offset_seconds``."""
        sb = self.server.sandbox
        options = sb.options
        if not options.date_header:
            return None
        moment = sb.now() + timedelta(seconds=options.date_offset_seconds)
        return format_datetime(moment, usegmt=True)

    def reset(self) -> None:
        """Abort the connection with a TCP RST and send nothing."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()  # drop the makefile reference so close() really closes
        self.connection.close()

    def hang(self, seconds: float | None) -> None:
        """Never answer: wait until the server stops (or ``seconds``), then drop the line."""
        self.server.stopping.wait(seconds)
        self.close_connection = True


def _printable(value: str) -> str:
    return "".join(ch for ch in value if 32 <= ord(ch) < 127)


def serve(handler: SandboxHandler) -> None:
    sb = handler.server.sandbox
    length = int(handler.headers.get("Content-Length") or 0)
    body = handler.rfile.read(length) if length > 0 else b""
    split = urlsplit(handler.path)
    path = split.path
    params = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
    sent_version = handler.headers.get("X-Polytomic-Version")
    options = sb.options
    echo = _printable(sent_version) if sent_version else options.default_version
    if path.startswith(ADMIN_PREFIX):
        handler.send(sb._admin(handler.command, path, body), echo)
        return
    authorization = handler.headers.get("Authorization")
    record = sb._log_request(
        handler.command, handler.path, path, params, authorization, sent_version
    )
    try:
        sb._run_hooks(record)
    except Exception as exc:
        response = api_error(500, f"sandbox hook failed: {exc!r}", "hook_error")
        record.status = response.status
        handler.send(response, echo)
        return
    options = sb.options  # a hook may have reconfigured the server
    if options.latency_ms:
        time.sleep(options.latency_ms / 1000.0)
    fault = sb._faults.pick(record.n, record.kind, record.sync_id, record.params)
    if fault is not None:
        record.fault = fault.kind
        if fault.kind in ("reset", "hang"):
            record.status = 0  # logged before the line drops, so a client never sees it unset
        faulted = _apply_fault(handler, fault, options.retry_after_on_429)
        if faulted is None:
            record.status = 0
            return
        if fault.kind not in ("latency", "trickle"):
            record.status = faulted.status
            handler.send(faulted, echo)
            return
    if not record.auth_ok:
        response = unauthorized(options)
    else:
        response = sb._api.handle(handler.command, path, params, options)
    record.status = response.status
    trickle = None
    if fault is not None and fault.kind == "trickle":
        trickle = 0.5 if fault.delay is None else fault.delay
    handler.send(response, echo, trickle)


def _apply_fault(handler: SandboxHandler, fault: Fault, retry_after: bool) -> Response | None:
    """The faulted response; ``None`` when the connection was reset or left hanging."""
    kind = fault.kind
    if kind == "reset":
        handler.reset()
        return None
    if kind == "hang":
        handler.hang(fault.delay)
        return None
    if kind == "latency":
        time.sleep(1.0 if fault.delay is None else fault.delay)
        return Response(200, b"")
    if kind == "trickle":
        return Response(200, b"")  # the real answer follows, sent slowly
    if kind == "429":
        response = api_error(429, "rate limit exceeded", "rate_limited")
        if retry_after:
            value = fault.retry_after
            response.headers["Retry-After"] = str(int(value)) if value == int(value) else str(value)
        return response
    if kind == "502_html":
        return Response(502, HTML_502, content_type="text/html")
    if kind == "body":
        raw = fault.body
        if isinstance(raw, str):
            raw = raw.encode()
        elif not isinstance(raw, bytes):
            raw = dumps(raw)
        return Response(fault.status, raw, headers=dict(fault.headers))
    status = int(kind)
    phrase = HTTPStatus(status).phrase.lower()
    return api_error(status, phrase, phrase.replace(" ", "_"))
