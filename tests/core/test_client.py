"""The HTTP layer's small promises: auth forms, URL policy, tokens, redaction, version header."""

from __future__ import annotations

import base64

import pytest

from pipelines.sandbox import Fault
from sources.polytomic.client import Paginator, auth_header, check_base_url
from sources.polytomic.errors import ConfigError, PaginationError, redact
from tests.conftest import first_walk_page


def test_api_key_is_sent_as_bearer_and_deployment_key_as_basic_with_the_org_id():
    assert auth_header("k-123", None, None) == "Bearer k-123"
    basic = auth_header(None, "dep-key", "org-1")
    assert base64.b64decode(basic.split()[1]).decode() == "org-1:dep-key"
    with pytest.raises(ConfigError, match="SOURCES__POLYTOMIC__API_KEY"):
        auth_header(None, None, None)
    with pytest.raises(ConfigError, match="ORGANIZATION_ID"):
        auth_header(None, "dep-key", None)


@pytest.mark.parametrize("url", ["http://127.0.0.1:9", "http://localhost:1", "https://x.example"])
def test_https_anywhere_and_plain_http_only_on_loopback_are_accepted(url):
    assert check_base_url(url + "/") == url


@pytest.mark.parametrize("url", ["http://app.polytomic.com", "ftp://x", "not a url"])
def test_other_base_urls_are_refused(url):
    with pytest.raises(ConfigError):
        check_base_url(url)


def test_a_repeated_page_token_is_an_error_not_a_loop():
    paginator = Paginator()
    assert paginator.advance({"pagination": {"next_page_token": "a"}}) == "a"
    assert paginator.advance({"pagination": {"next_page_token": "b"}}) == "b"
    with pytest.raises(PaginationError):
        paginator.advance({"pagination": {"next_page_token": "a"}})


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"pagination": None},
        {"pagination": {"next_page_token": None}},
        {"pagination": {"next_page_token": ""}},
    ],
)
def test_every_last_page_shape_means_no_next_page(body):
    assert Paginator().advance(body) is None


def test_echoed_bodies_are_truncated_and_credentials_redacted():
    text = (
        'bad {"token": "tok-secret", "api_key": "ak-1"} Authorization: Bearer abc.def ' + "x" * 500
    )
    out = redact(text, ["my-secret-key"])
    assert "tok-secret" not in out and "ak-1" not in out and "abc.def" not in out
    assert len(out) <= 201
    assert "my-secret-key" not in redact("echo my-secret-key", ["my-secret-key"])


def test_the_api_version_header_is_sent_and_configurable(make_sandbox, make_etl):
    sb = make_sandbox(seed=31, syncs=1, executions=5)
    make_etl(sb).run()
    assert {r.version_header for r in sb.requests} == {"2025-09-18"}
    sb.reset_log()
    make_etl(sb, name="other", API_VERSION="2024-02-08").run()
    assert {r.version_header for r in sb.requests} == {"2024-02-08"}


def test_a_page_out_of_updated_at_order_fails_the_sync_loudly(make_sandbox, make_etl):
    sb = make_sandbox(seed=32, syncs=1, executions=50)
    sync_id = sb.sync_ids()[0]
    real = first_walk_page(sb, sync_id)
    real["data"] = list(reversed(real["data"]))
    sb.inject(Fault("body", kind_filter="list_executions", body=real))
    code, _, err = make_etl(sb).cli("run")
    assert code == 1 and "out of updated_at order" in err
