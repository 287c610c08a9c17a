"""Contract with the official SDK (polytomic 25.9.10): every body parses into its models,
without unknown keys and with enum values the SDK knows, and the SDK's own client pages
through a whole history."""

from __future__ import annotations

import typing
from typing import Any

import pydantic
import pytest
from polytomic import Polytomic
from polytomic.types import (
    ApiError,
    BulkExecutionStatus,
    BulkSchemaExecutionStatus,
    BulkSyncExecutionEnvelope,
    BulkSyncListEnvelope,
    BulkSyncResponseEnvelope,
    ListBulkSyncExecutionsEnvelope,
)

from pipelines.sandbox import Fault, Sandbox

from .conftest import Client


def _literals(alias: Any) -> set[str]:
    """Values of an SDK enum alias, ``Union[Literal[...], Any]``."""
    literal = typing.get_args(alias)[0]
    return set(typing.get_args(literal))


def _no_extras(model: Any, where: str = "") -> None:
    """Every key we send is a declared SDK field, at every depth."""
    if isinstance(model, pydantic.BaseModel):
        assert not model.model_extra, f"{where}: unknown keys {sorted(model.model_extra)}"
        for name in type(model).model_fields:
            _no_extras(getattr(model, name), f"{where}.{name}")
    elif isinstance(model, list):
        for i, item in enumerate(model):
            _no_extras(item, f"{where}[{i}]")


def _parse(model: type[pydantic.BaseModel], body: Any) -> Any:
    parsed = model.model_validate(body)
    _no_extras(parsed, model.__name__)
    return parsed


def test_sync_list_and_get_parse_into_sdk_models(sb: Sandbox, client: Client) -> None:
    listed = _parse(BulkSyncListEnvelope, client.json("/api/bulk/syncs"))
    assert [s.id for s in listed.data] and all(s.default_schedule for s in listed.data)
    for sync in listed.data:
        one = _parse(BulkSyncResponseEnvelope, client.json(f"/api/bulk/syncs/{sync.id}"))
        assert one.data.id == sync.id
        assert one.data.created_at.tzinfo is not None


@pytest.mark.parametrize("include", [True, False, "null"])
def test_execution_pages_and_details_parse_into_sdk_models(
    sb: Sandbox, client: Client, include: object
) -> None:
    sb.configure(list_includes_schemas=include)
    execution_statuses = _literals(BulkExecutionStatus)
    schema_statuses = _literals(BulkSchemaExecutionStatus)
    for sync_id in sb.sync_ids():
        page = _parse(ListBulkSyncExecutionsEnvelope, client.executions_page(sync_id, limit=100))
        assert page.pagination is not None
        for item in page.data:
            assert item.status in execution_statuses
        detail_body = client.json(f"/api/bulk/syncs/{sync_id}/executions/{page.data[0].id}")
        detail = _parse(BulkSyncExecutionEnvelope, detail_body)
        assert detail.data.schemas
        assert all(s.status in schema_statuses for s in detail.data.schemas)
        assert all(s.schema_ for s in detail.data.schemas)


def test_every_execution_in_the_ground_truth_is_an_sdk_execution(sb: Sandbox) -> None:
    for row in sb.truth_executions():
        row.pop("bulk_sync_id")
        _parse(BulkSyncExecutionEnvelope, {"data": row})


def test_error_bodies_parse_as_sdk_api_errors(sb: Sandbox, client: Client) -> None:
    for response in (
        client.get("/api/bulk/syncs/00000000-0000-4000-8000-000000000000"),
        client.get(f"/api/bulk/syncs/{sb.sync_ids()[0]}/executions", page_token="bad"),
    ):
        error = _parse(ApiError, response.json())
        assert error.status == response.status_code


@pytest.mark.parametrize("style", ["keyset", "offset"])
@pytest.mark.parametrize("last_page", ["no_pagination_key", "null_token", "empty_string"])
def test_the_sdk_client_pages_through_every_execution(
    sb: Sandbox, style: str, last_page: str
) -> None:
    sb.configure(token_style=style, last_page=last_page)
    sdk = Polytomic(base_url=sb.base_url, token=sb.api_key)
    sync_id = sb.sync_ids()[0]
    seen: list[str] = []
    token = None
    for _ in range(100):
        page = sdk.bulk_sync.executions.list(sync_id, page_token=token, limit=100)
        seen.extend(e.id for e in page.data or [])
        token = page.pagination.next_page_token if page.pagination else None
        if not token:
            break
    expected = [e["id"] for e in sb.truth_executions() if e["bulk_sync_id"] == sync_id]
    assert sorted(seen) == sorted(expected) and len(seen) == len(expected)
    assert sb.count("list_executions", sync_id) == 2
    assert {r.version_header for r in sb.requests} == {"2025-09-18"}


def test_the_sdk_client_reads_syncs_and_single_executions(sb: Sandbox) -> None:
    sdk = Polytomic(base_url=sb.base_url, token=sb.api_key)
    syncs = sdk.bulk_sync.list().data
    assert {s.id for s in syncs} == set(sb.sync_ids())
    assert {s.id for s in sdk.bulk_sync.list(active=True).data} == set(sb.sync_ids())
    sync_id = syncs[0].id
    assert sdk.bulk_sync.get(sync_id).data.name == syncs[0].name
    exec_id = sb.execution_ids(sync_id)[-1]
    one = sdk.bulk_sync.executions.get(sync_id, exec_id).data
    assert one.id == exec_id and one.schemas
    terminal = sdk.bulk_sync.executions.list(sync_id, only_terminal=True, ascending=True).data
    assert all(e.completed_at is not None for e in terminal)


def test_the_sdk_honours_retry_after_from_an_injected_429(sb: Sandbox) -> None:
    sb.inject(Fault("429", retry_after=1, kind_filter="list_syncs"))
    sdk = Polytomic(base_url=sb.base_url, token=sb.api_key)
    assert len(sdk.bulk_sync.list().data) == 3
    assert [r.status for r in sb.requests if r.kind == "list_syncs"] == [429, 200]
