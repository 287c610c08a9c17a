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
from .generate import default_plans
from .options import Options
from .paging import TokenCodec
from .plans import SyncPlan
from .records import dumps, new_uuid
from .requestlog import RequestLog, RequestRecord
from .server import SandboxHTTPServer

Hook = Callable[["Sandbox", RequestRecord], None]

__all__ = ["Hook", "Sandbox", "SandboxConflict"]


class Sandbox:
    """A deterministic, in-process Polytomic bulk-sync API on ``127.0.0.1``.

    Args:
        seed: everything generated (ids, statuses, counts, timings) follows from it.
        syncs, executions, schemas, failure_rate: shape of the default plans.
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
        failure_rate: float = 0.1,
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

    # -- clock -----------------------------------------------------------------------------

    def now(self) -> datetime:
        return self._clock.now()

    def advance(self, seconds: float) -> datetime:
        return self._clock.advance(seconds)

    # -- scenario --------------------------------------------------------------------------

    def sync_ids(self, include_deleted: bool = False) -> list[str]:
        with self._store.lock:
            return [s.id for s in self._store.syncs.values() if include_deleted or not s.deleted]

    def execution_ids(self, sync_id: str) -> list[str]:
        """Execution ids of a sync, oldest start first."""
        return [e["id"] for e in self.truth_executions(True) if e["bulk_sync_id"] == sync_id]

    def add_executions(
        self, sync_id: str, n: int = 1, status: str = "completed", **overrides: Any
    ) -> list[str]:
        """New terminal executions finishing now, with strictly increasing ``updated_at``."""
        return self._store.add_executions(sync_id, n, status, overrides)

    def start_execution(self, sync_id: str, status: str = "running") -> str:
        """Start (or queue, for ``created``/``scheduled``) an execution now. Raises
        ``SandboxConflict`` (the API's 409) if a running one exists and ``status`` runs."""
        return self._store.start_execution(sync_id, status)

    def finish_inflight(self, sync_id: str | None = None, status: str = "completed") -> list[str]:
        """Every non-terminal execution (of one sync, or all) ends now with ``status``."""
        return self._store.finish_inflight(sync_id, status)

    def reupdate(self, sync_id: str, exec_id: str | None = None, keep_schemas: int = 1) -> str:
        """An old terminal execution gets ``updated_at = now``, new counts, fewer schemas."""
        return self._store.reupdate(sync_id, exec_id, keep_schemas)

    def add_late_commit(self, sync_id: str, behind_seconds: float = 60) -> str:
        """A new terminal execution whose ``updated_at`` is ``behind_seconds`` before now."""
        return self._store.add_late_commit(sync_id, behind_seconds)

    def add_sync(
        self, name: str | None = None, executions: int = 0, frequency: str = "hourly"
    ) -> str:
        plan = SyncPlan(
            name=name,
            frequency=frequency,
            executions=executions,
            schemas=self._store.default_schemas,
            failure_rate=self._store.default_failure_rate,
        )
        return self._store.add_sync(plan)

    def delete_sync(self, sync_id: str) -> None:
        self._store.delete_sync(sync_id)

    def set_active(self, sync_id: str, active: bool) -> None:
        self._store.set_active(sync_id, active)

    # -- ground truth ----------------------------------------------------------------------

    def truth_syncs(self, include_deleted: bool = False) -> list[dict[str, Any]]:
        return self._store.truth_syncs(include_deleted)

    def truth_executions(self, include_deleted_syncs: bool = False) -> list[dict[str, Any]]:
        """Every execution as the detail endpoint returns it now, plus ``bulk_sync_id``;
        per sync, oldest start first."""
        return self._store.truth_executions(include_deleted_syncs)

    def truth_execution(self, sync_id: str, exec_id: str) -> dict[str, Any]:
        with self._store.lock:
            return self._store.execution(sync_id, exec_id).wire()

    def truth_schemas(self, include_deleted_syncs: bool = False) -> list[dict[str, Any]]:
        """Per-schema rows, flattened, with ``execution_id`` and ``bulk_sync_id``."""
        rows = []
        for ex in self.truth_executions(include_deleted_syncs):
            for schema in ex["schemas"]:
                rows.append(
                    {**schema, "execution_id": ex["id"], "bulk_sync_id": ex["bulk_sync_id"]}
                )
        return rows

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
