"""The attempt deadline covers the status line and headers too, not only the body."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from sources.polytomic.client import PolytomicClient
from sources.polytomic.errors import ApiError


def _trickle_headers(server: socket.socket, stop: threading.Event) -> None:
    conn, _ = server.accept()
    conn.recv(65536)
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    while not stop.is_set():  # one header byte every 0.3 s: every single read succeeds
        try:
            conn.sendall(b"X")
        except OSError:
            return
        time.sleep(0.3)
    conn.close()


def test_a_server_that_trickles_its_headers_times_out_within_the_deadline() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    stop = threading.Event()
    threading.Thread(target=_trickle_headers, args=(server, stop), daemon=True).start()
    client = PolytomicClient(
        f"http://127.0.0.1:{server.getsockname()[1]}", "Bearer k", timeout=1.0, max_attempts=1
    )
    outcome: dict[str, Any] = {}

    def call() -> None:
        try:
            client.get("/api/bulk/syncs")
        except Exception as exc:
            outcome["error"] = exc

    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    caller.join(10)
    stop.set()
    server.close()
    assert not caller.is_alive(), "a 1 s deadline did not end a request whose headers trickle"
    assert isinstance(outcome.get("error"), ApiError)
