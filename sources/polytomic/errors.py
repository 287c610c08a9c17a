"""Errors the source raises. Each maps to one CLI exit code, and none carries a secret."""

import re
from collections.abc import Iterable

_CREDENTIAL_PATTERNS = (
    re.compile(r"(?i)(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"),
    re.compile(
        r"(?i)(api[_-]?key|deployment[_-]?key|token|secret|password)([\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+"
    ),
)
# Greedy to the last `@` of the token: a password may hold `@`, `/` or `:` unescaped.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/\s:@]*):(\S*)@")
_QUERY_SECRET = re.compile(
    r"(?i)([?&;][^=&\s#]*(?:key|token|secret|pass|pwd|auth|sig|credential|session)[^=&\s#]*=)"
    r"[^&\s#'\"]+"
)
MAX_BODY_CHARS = 200


def redact(
    text: str, secrets: Iterable[str | None] = (), limit: int | None = MAX_BODY_CHARS
) -> str:
    """One line without anything that looks like a credential, cut at `limit` characters.

    Known secrets (longest first), `Bearer`/`Basic` values, `key=`/`password:` pairs, URL
    passwords (`scheme://user:***@`) and secret-looking query values are blanked.
    """
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "***")
    text = _USERINFO.sub(r"\1\2:***@", text)
    text = _QUERY_SECRET.sub(r"\1***", text)
    text = _CREDENTIAL_PATTERNS[0].sub(r"\1 ***", text)
    text = _CREDENTIAL_PATTERNS[1].sub(r"\1\2***", text)
    text = " ".join(text.split())
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


class PolytomicError(Exception):
    """Base class. `exit_code` follows the CLI contract: 1 run failed, 2 config/auth/usage."""

    exit_code = 1


class ConfigError(PolytomicError):
    exit_code = 2


class AuthError(PolytomicError):
    exit_code = 2


class ApiError(PolytomicError):
    """An HTTP error left after retries, or a response we cannot use."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NotFound(ApiError):
    pass


class BadRequest(ApiError):
    pass


class RateLimitTooLong(ApiError):
    pass


class MalformedResponse(ApiError):
    pass


class PaginationError(ApiError):
    """The API broke a pagination promise: a repeated token or rows out of order."""
