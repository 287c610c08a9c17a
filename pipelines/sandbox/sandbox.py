"""``Sandbox``: the public face of the simulated Polytomic bulk-sync API."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from .api import Api, Credentials, Response, api_error, classify
from .clock import Clock
from .data import SandboxConflict, Store
from .faults import Fault, FaultBook
from .generate import DEFAULT_FAILURE_RATE, default_plans
from .options import Options
from .paging import TokenCodec
from .plans import SyncPlan
from .records import dumps, new_uuid
from .requestlog import RequestLog, RequestRecord
from .scenario import ScenarioApi
from .server import SandboxHTTPServer

Hook = Callable[["Sandbox", RequestRecord], None]

__all__ = ["Hook", "Sandbox", "SandboxConflict"]


class Sandbox(ScenarioApi):
    """A deterministic, in-process Polytomic bulk-sync API on ``127.0.0.1``.

    Args:
        seed: everything generated (ids, statuses, counts, timings) follows from it.
        syncs, executions, schemas, failure_rate: shape of the default plans (a healthy
            organisation: 1.5 % of runs fail by default; see ``generate.default_plans``).
        now: pin the clock to this aware datetime; ``None`` follows wall time.
        plans: explicit ``SyncPlan`` list (overrides ``syncs``/``executions``).
        token_style: ``keyset`` or ``offset`` (see ``Options``).
        port: 0 picks a free port.
        **options: any other ``Options`` field, e.g. ``paginate_syncs=True``.
    """

    def __init__(
        self,
        seed: int = 7,
        syncs: int = 3,
        executions: int = 250,
        schemas: tuple[int, int] | tuple[str, ...] | int = (1, 5),
        failure_rate: float = DEFAULT_FAILURE_RATE,
        now: datetime | None = None,
        plans: Sequence[SyncPlan] | None = None,
        token_style: str = "keyset",
        port: int = 0,
        host: str = "127.0.0.1",
        **options: Any,
    ) -> None:
        self.seed = seed
        self.host, self.port = host, port
        self._clock = Clock(now)
        chosen = (
            list(plans)
            if plans is not None
            else default_plans(seed, syncs, executions, schemas, failure_rate)
        )
        self._store = Store(seed, chosen, self._clock, schemas, failure_rate)
        ident = random.Random(f"{seed}:credentials")
        self.api_key = new_uuid(ident)
        self.deployment_key = f"{ident.getrandbits(128):032x}"
        self.organization_id = self._store.organization_id
        self._credentials = Credentials(self.api_key, self.organization_id, self.deployment_key)
        secret = hashlib.sha256(f"polytomic-sandbox:{seed}".encode()).digest()
        self._api = Api(self._store, TokenCodec(secret))
        self._options = Options().updated(token_style=token_style, **options)
        self._faults = FaultBook()
        self._log = RequestLog()
        self._hooks: list[Hook] = []
        self._hooks_lock = threading.Lock()
        self._server: SandboxHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.hook_errors: list[BaseException] = []

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Sandbox:
        if self._server is not None:
            return self
        self._server = SandboxHTTPServer((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name=f"polytomic-sandbox-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    # -- options, faults, hooks, log ---------------------------------------------------------

    @property
    def options(self) -> Options:
        return self._options

    def configure(self, **changes: Any) -> Options:
        """Switch runtime options; takes effect on the next request."""
        self._options = self._options.updated(**changes)
        return self._options

    def inject(self, fault: Fault) -> Fault:
        return self._faults.add(fault)

    def clear_faults(self) -> None:
        self._faults.clear()

    def add_hook(self, fn: Hook) -> None:
        """``fn(sandbox, record)`` runs for each API request after it is logged and before
        its response is computed; it may call any scenario method."""
        with self._hooks_lock:
            self._hooks.append(fn)

    def clear_hooks(self) -> None:
        with self._hooks_lock:
            self._hooks.clear()

    @property
    def requests(self) -> list[RequestRecord]:
        return self._log.snapshot()

    def count(self, kind: str | None = None, sync_id: str | None = None, **params: Any) -> int:
        """Logged API requests matching ``kind``, ``sync_id`` and query ``params``
        (``limit=100``, ``only_terminal=True``, ``page_token=None`` for first pages)."""
        return self._log.count(kind, sync_id, **params)

    def reset_log(self) -> None:
        """Forget logged requests; request numbers start again at 1."""
        self._log.reset()

    def stats(self) -> dict[str, Any]:
        return self._log.stats()

    def warm(self) -> None:
        """Render every execution's JSON now, so benchmarks measure paging, not rendering."""
        with self._store.lock:
            mode = {True: "full", False: "omit", "null": "null"}[
                self._options.list_includes_schemas
            ]
            for rows in self._store.executions.values():
                for execution in rows.values():
                    execution.json(mode)

    # -- used by the HTTP server -------------------------------------------------------------

    def basic_auth_header(self) -> str:
        raw = f"{self.organization_id}:{self.deployment_key}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def _log_request(
        self,
        method: str,
        raw_path: str,
        path: str,
        params: dict[str, str],
        authorization: str | None,
        version: str | None,
    ) -> RequestRecord:
        kind, sync_id, exec_id = classify(path)
        return self._log.add(
            method=method,
            path=path,
            raw_path=raw_path,
            kind=kind,
            sync_id=sync_id,
            exec_id=exec_id,
            params=params,
            auth_ok=self._credentials.accepts(authorization),
            version_header=version,
        )

    def _run_hooks(self, record: RequestRecord) -> None:
        with self._hooks_lock:
            hooks = list(self._hooks)
        for hook in hooks:
            try:
                hook(self, record)
            except BaseException as exc:
                self.hook_errors.append(exc)
                raise

    def _admin(self, method: str, path: str, body: bytes) -> Response:
        action = path[len("/_sandbox/") :].strip("/")
        try:
            if action == "stats" and method == "GET":
                return Response(200, dumps(self.stats()))
            if action == "options" and method == "GET":
                return Response(200, dumps(self._options.as_dict()))
            if action == "reset" and method == "POST":
                self.reset_log()
                return Response(200, dumps({"ok": True}))
            if action == "configure" and method == "POST":
                changes = json.loads(body or b"{}")
                if not isinstance(changes, dict):
                    raise ValueError("configure expects a JSON object")
                return Response(200, dumps(self.configure(**changes).as_dict()))
        except ValueError as exc:
            return api_error(400, str(exc), "bad_request")
        return api_error(404, "unknown sandbox admin endpoint", "not_found", path=path)
