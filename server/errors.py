"""The error hierarchy. Each class carries a stable `code`, which the API puts in `extensions.code`.

CMSError                      INTERNAL_SERVER_ERROR (never shown to clients as-is)
├── InvalidInputError         BAD_USER_INPUT      malformed or unknown input; `path` names the field
├── NotFoundError             NOT_FOUND           absent, or not readable in the current org
├── ConflictError             CONFLICT            a stale revision or a uniqueness clash
│   └── SingletonExistsError  SINGLETON_EXISTS    a second document of a singleton type
├── ForbiddenError            FORBIDDEN           the caller may not do this (capability or RLS)
├── UnauthenticatedError      UNAUTHENTICATED     no valid credentials
├── QueryTooComplexError      QUERY_TOO_COMPLEX   depth, alias or size limits
├── TimedOutError             TIMEOUT             a statement or lock wait ran out of time
└── UnavailableError          SERVICE_UNAVAILABLE the database cannot be reached, a connection was
                                                  lost, or none became free in time
"""

from __future__ import annotations

from typing import Any, ClassVar


class CMSError(Exception):
    code: ClassVar[str] = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidInputError(CMSError):
    code = "BAD_USER_INPUT"

    def __init__(self, message: str, *, path: str | None = None, **details: Any) -> None:
        super().__init__(message, **details)
        self.path = path


class NotFoundError(CMSError):
    code = "NOT_FOUND"


class ConflictError(CMSError):
    code = "CONFLICT"


class SingletonExistsError(ConflictError):
    code = "SINGLETON_EXISTS"


class ForbiddenError(CMSError):
    code = "FORBIDDEN"


class UnauthenticatedError(CMSError):
    code = "UNAUTHENTICATED"


class QueryTooComplexError(CMSError):
    code = "QUERY_TOO_COMPLEX"


class TimedOutError(CMSError):
    code = "TIMEOUT"


class UnavailableError(CMSError):
    code = "SERVICE_UNAVAILABLE"
