"""The request log: one record per API request, faulted ones included."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class RequestRecord:
    """One API request as the sandbox saw it.

    ``status`` is ``None`` while the request is being handled (hooks see that), the HTTP
    status afterwards, and ``0`` when a fault reset the connection or left it hanging.
    """

    n: int
    method: str
    path: str
    kind: str
    sync_id: str | None
    exec_id: str | None
    params: dict[str, str]
    auth_ok: bool
    version_header: str | None
    raw_path: str = ""
    status: int | None = None
    fault: str | None = None
    at: float = field(default_factory=time.time)

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _param_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def matches(record: RequestRecord, kind: str | None, sync_id: str | None, **params: Any) -> bool:
    """Filter used by ``Sandbox.count``: a param value of ``None`` means "absent"; booleans
    match their lowercase query spelling."""
    if kind is not None and record.kind != kind:
        return False
    if sync_id is not None and record.sync_id != sync_id:
        return False
    for name, wanted in params.items():
        if wanted is None:
            if name in record.params:
                return False
        elif record.params.get(name) != _param_text(wanted):
            return False
    return True


class RequestLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []
        self._next = 1

    def add(self, **fields: Any) -> RequestRecord:
        with self._lock:
            record = RequestRecord(n=self._next, **fields)
            self._next += 1
            self._records.append(record)
            return record

    def snapshot(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def reset(self) -> None:
        """Forget all records; numbering restarts at 1."""
        with self._lock:
            self._records.clear()
            self._next = 1

    def count(self, kind: str | None, sync_id: str | None, **params: Any) -> int:
        return sum(matches(r, kind, sync_id, **params) for r in self.snapshot())

    def stats(self) -> dict[str, Any]:
        records = self.snapshot()
        return {
            "total": len(records),
            "by_kind": dict(Counter(r.kind for r in records)),
            "by_status": {str(k): v for k, v in Counter(r.status for r in records).items()},
            "by_sync": dict(Counter(r.sync_id for r in records if r.sync_id)),
            "faults": dict(Counter(r.fault for r in records if r.fault)),
            "unauthorized": sum(not r.auth_ok for r in records),
        }
