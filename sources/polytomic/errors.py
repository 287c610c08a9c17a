"""Errors the source raises. Each maps to one CLI exit code, and none carries a secret."""

import re
from collections.abc import Iterable

_CREDENTIAL_PATTERNS = (
    re.compile(r"(?i)(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"),
    re.compile(
        r"(?i)(api[_-]?key|deployment[_-]?key|token|secret|password)([\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+"
    ),
)
MAX_BODY_CHARS = 200


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Truncate an echoed API body and blank out anything that looks like a credential."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    text = _CREDENTIAL_PATTERNS[0].sub(r"\1 ***", text)
    text = _CREDENTIAL_PATTERNS[1].sub(r"\1\2***", text)
    text = " ".join(text.split())
    return text if len(text) <= MAX_BODY_CHARS else text[:MAX_BODY_CHARS] + "…"


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
