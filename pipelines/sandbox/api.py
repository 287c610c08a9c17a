"""The simulated REST API: routing, auth and response bodies (no sockets here)."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field

from .data import NotFound, Store, View
from .options import Options
from .paging import (
    BadToken,
    Ordering,
    TokenCodec,
    clamp_limit,
    empty_detour,
    next_payload,
    start_position,
)
from .records import SCHEMAS_FULL, SCHEMAS_NULL, SCHEMAS_OMIT, dumps

_ROUTES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^/api/bulk/syncs/?$"), "list_syncs"),
    (re.compile(r"^/api/bulk/syncs/(?P<sync>[^/]+)/?$"), "get_sync"),
    (re.compile(r"^/api/bulk/syncs/(?P<sync>[^/]+)/executions/?$"), "list_executions"),
    (
        re.compile(r"^/api/bulk/syncs/(?P<sync>[^/]+)/executions/(?P<exec>[^/]+)/?$"),
        "get_execution",
    ),
)
_GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_GO_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Credentials:
    api_key: str
    organization_id: str
    deployment_key: str

    def accepts(self, header: str | None) -> bool:
        """``Bearer <api_key>`` or ``Basic base64(organization_id:deployment_key)``."""
        if not header or " " not in header:
            return False
        scheme, _, value = header.strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer":
            return value == self.api_key
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(value, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return False
            return decoded == f"{self.organization_id}:{self.deployment_key}"
        return False


def classify(path: str) -> tuple[str, str | None, str | None]:
    """Request kind, sync id and execution id of an API path."""
    for pattern, kind in _ROUTES:
        match = pattern.match(path)
        if match:
            groups = match.groupdict()
            return kind, groups.get("sync"), groups.get("exec")
    return "other", None, None


def api_error(status: int, message: str, key: str, **metadata: object) -> Response:
    body = {"status": status, "message": message, "key": key, "metadata": metadata}
    return Response(status, dumps(body))


def unauthorized(options: Options) -> Response:
    if options.unauthorized_body == "legacy":
        body = {"status": "Unauthorized", "error": "invalid credentials", "code": 401}
        return Response(401, dumps({**body, "context": {}}))
    return api_error(401, "invalid or missing credentials", "unauthorized")


def parse_bool(raw: str | None, name: str) -> bool | None:
    """Query booleans as Go's ``strconv.ParseBool`` reads them; absent means ``None``."""
    if raw is None or raw == "":
        return None
    if raw in _GO_TRUE:
        return True
    if raw in _GO_FALSE:
        return False
    raise ValueError(f"invalid boolean for {name}: {raw!r}")


class Api:
    def __init__(self, store: Store, codec: TokenCodec) -> None:
        self.store = store
        self.codec = codec

    def handle(self, method: str, path: str, params: dict[str, str], options: Options) -> Response:
        kind, sync_id, exec_id = classify(path)
        if kind == "other":
            return api_error(404, "not found", "not_found", path=path)
        if method != "GET":
            return api_error(405, f"method {method} not allowed", "method_not_allowed")
        try:
            if kind == "list_syncs":
                return self._list_syncs(params, options)
            assert sync_id is not None
            sync_id = sync_id.lower()  # UUIDs: any case routes to the same sync
            if kind == "get_sync":
                return self._ok(self.store.sync(sync_id).json())
            if kind == "get_execution":
                assert exec_id is not None
                return self._ok(self.store.execution(sync_id, exec_id).json(SCHEMAS_FULL))
            return self._list_executions(sync_id, params, options)
        except NotFound as exc:
            what, ident = exc.args
            return api_error(404, f"{what} not found", "not_found", id=ident)
        except BadToken as exc:
            return api_error(400, str(exc), "invalid_page_token")
        except ValueError as exc:
            return api_error(400, str(exc), "bad_request")

    @staticmethod
    def _ok(data: bytes) -> Response:
        return Response(200, b'{"data":' + data + b"}")

    def _decode(self, params: dict[str, str], scope: str) -> dict[str, object] | None:
        token = params.get("page_token")
        if not token:
            return None
        payload = self.codec.decode(token)
        if payload.get("sc") != scope:
            raise BadToken("page_token was issued for a different listing")
        return payload

    def _list_executions(self, sync_id: str, params: dict[str, str], opts: Options) -> Response:
        only_terminal = bool(parse_bool(params.get("only_terminal"), "only_terminal"))
        ascending = bool(parse_bool(params.get("ascending"), "ascending"))
        limit = clamp_limit(params.get("limit"), opts.default_limit, opts.max_limit)
        tie_desc = opts.tie_order == "id_desc"
        mode = {True: SCHEMAS_FULL, False: SCHEMAS_OMIT, "null": SCHEMAS_NULL}[
            opts.list_includes_schemas
        ]
        with self.store.lock:
            self.store.sync(sync_id)
            payload = self._decode(params, sync_id)
            follow = empty_detour(payload)
            if follow is not None:
                return Response(200, envelope([], self.codec.encode(follow), opts))
            ordering = (
                self.codec.ordering_of(payload)
                if payload
                else Ordering(sync_id, only_terminal, ascending)
            )
            view = self.store.execution_view(
                sync_id,
                ordering.only_terminal,
                ordering.ascending,
                tie_desc,
                opts.terminal_statuses,
            )
            start = start_position(view, payload, tie_desc)
            rows = view.rows[start : start + limit]
            parts = [row.json(mode) for row in rows]
            token = self._next_token(opts, ordering, view, start, len(rows), empties=True)
        return Response(200, envelope(parts, token, opts))

    def _list_syncs(self, params: dict[str, str], opts: Options) -> Response:
        active = parse_bool(params.get("active"), "active")
        tie_desc = opts.tie_order == "id_desc"
        with self.store.lock:
            view = self.store.sync_view(active, tie_desc)
            if not opts.paginate_syncs:
                parts = [_cased(s.id, s.json(), opts) for s in view.rows]
                return Response(200, b'{"data":[' + b",".join(parts) + b"]}")
            scope = f"syncs:{active}"
            payload = self._decode(params, scope)
            size = opts.syncs_page_size
            limit = clamp_limit(params.get("limit"), size, size)
            start = start_position(view, payload, tie_desc)
            rows = view.rows[start : start + limit]
            parts = [_cased(s.id, s.json(), opts) for s in rows]
            token = self._next_token(opts, Ordering(scope), view, start, len(rows))
        return Response(200, envelope(parts, token, opts))

    def _next_token(
        self,
        opts: Options,
        ordering: Ordering,
        view: View,
        start: int,
        count: int,
        empties: bool = False,
    ) -> str | None:
        """The token after this page; ``empties`` applies the empty-page options."""
        end = start + count
        more = end < len(view.rows)
        tail = empties and not more and opts.endless_empty != "off"
        if not (more or tail or (count and opts.last_page == "extra_empty_page")):
            return None
        sort_ts = last_id = None
        if count:
            direction = 1 if ordering.ascending else -1
            sort_ts = direction * view.keys[end - 1][0]
            last_id = view.rows[end - 1].id_int
        payload = next_payload(opts.token_style, ordering, view, end, sort_ts, last_id)
        if tail:
            payload["end"] = opts.endless_empty
        elif empties and more and opts.mid_empty_pages:
            payload["e"] = opts.mid_empty_pages
        return self.codec.encode(payload)


def _cased(sync_id: str, body: bytes, opts: Options) -> bytes:
    """The sync list prints ids in upper case with ``sync_id_case="upper"``."""
    if opts.sync_id_case != "upper":
        return body
    return body.replace(sync_id.encode(), sync_id.upper().encode())


def envelope(parts: list[bytes], token: str | None, opts: Options) -> bytes:
    """``{"data": [...], "pagination": {...}}`` with the configured last-page shape."""
    if not parts and opts.empty_data == "null":
        data = b"null"
    else:
        data = b"[" + b",".join(parts) + b"]"
    if token:
        pagination = b',"pagination":{"next_page_token":' + dumps(token) + b"}"
    elif opts.last_page == "no_pagination_key":
        pagination = b""
    elif opts.last_page == "empty_string":
        pagination = b',"pagination":{"next_page_token":""}'
    else:
        pagination = b',"pagination":{"next_page_token":null}'
    return b'{"data":' + data + pagination + b"}"
