"""The one error shape: ``{"error": {"code", "message", "details", "correlation_id"}}``.

Raise an :class:`ApiError` (or a subclass) anywhere; the handlers installed by
``create_app`` turn it, validation failures, unknown routes and unexpected
exceptions into that shape. Clients never see a stack trace or SQL. The OpenAPI
document says so: every operation's 422, 4XX and 5XX answer is an ``ErrorResponse``
(not FastAPI's ``HTTPValidationError``, which these handlers never send).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared import context

log = logging.getLogger(__name__)


class ApiError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: Any = None,
        status_code: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.details = details
        self.status_code = status_code or self.status_code
        self.headers = headers


class Unauthorized(ApiError):
    status_code, code = 401, "unauthorized"

    def __init__(self, message: str = "Authentication required", **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(message, **kw)


class Forbidden(ApiError):
    status_code, code = 403, "forbidden"


class NotFound(ApiError):
    status_code, code = 404, "not_found"


class Conflict(ApiError):
    status_code, code = 409, "conflict"


class PayloadTooLarge(ApiError):
    status_code, code = 413, "payload_too_large"


class Unprocessable(ApiError):
    status_code, code = 422, "validation_error"


class _RetryLater(ApiError):
    """An answer the client may retry after ``retry_after`` seconds (at least 1), said in ``Retry-After``."""

    def __init__(self, message: str, *, retry_after: int, **kw: Any) -> None:
        kw["headers"] = {**(kw.get("headers") or {}), "Retry-After": str(max(1, retry_after))}
        super().__init__(message, **kw)


class TooManyRequests(_RetryLater):
    status_code, code = 429, "rate_limited"


class ServiceUnavailable(_RetryLater):
    status_code, code = 503, "service_unavailable"

    def __init__(self, message: str, *, retry_after: int = 5, **kw: Any) -> None:
        super().__init__(message, retry_after=retry_after, **kw)


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "details": details,
            "correlation_id": context.correlation_id.get(),
        }
    }


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(code, message, details), status_code=status, headers=headers)


def _api_error_response(exc: ApiError) -> JSONResponse:
    return error_response(exc.status_code, exc.code, exc.message, exc.details, exc.headers)


# character_not_in_repertoire (a NUL in text), untranslatable_character (\u0000 in jsonb)
TEXT_POSTGRES_CANNOT_STORE = frozenset({"22021", "22P05"})
# "not now" rather than "never": connection exceptions (08), insufficient resources (53, e.g. too many
# connections), operator intervention (57: shutdown, cannot connect now, statement timeout), and the
# rollbacks a retry cures (serialization failure, deadlock). The client gets 503 and may retry.
_TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "53", "57"})
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})


def is_transient_database_error(sqlstate: str | None) -> bool:
    return bool(sqlstate) and (sqlstate[:2] in _TRANSIENT_SQLSTATE_CLASSES or sqlstate in _TRANSIENT_SQLSTATES)


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts) or (str(loc[0]) if loc else "request")


def validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {"field": _field_name(tuple(err.get("loc", ()))), "message": err.get("msg", ""), "type": err.get("type")}
        for err in exc.errors()
    ]


ERROR_SCHEMA_NAME = "ErrorResponse"
ERROR_SCHEMA: dict[str, Any] = {
    "title": ERROR_SCHEMA_NAME,
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details", "correlation_id"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {},
                "correlation_id": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            },
        }
    },
}
_FASTAPI_VALIDATION_ERROR = "#/components/schemas/HTTPValidationError"
_HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def document_error_shape(document: dict[str, Any]) -> dict[str, Any]:
    """An OpenAPI document with :data:`ERROR_SCHEMA` as every operation's 422, 4XX and 5XX answer."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas[ERROR_SCHEMA_NAME] = ERROR_SCHEMA
    content = {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_SCHEMA_NAME}"}}}
    for item in document.get("paths", {}).values():
        for method, operation in item.items():
            if method not in _HTTP_METHODS:
                continue
            responses = operation.setdefault("responses", {})
            documented_422 = responses.get("422", {}).get("content", {}).get("application/json", {}).get("schema")
            if documented_422 == {"$ref": _FASTAPI_VALIDATION_ERROR}:
                responses["422"] = {"description": "Validation error", "content": content}
            responses.setdefault("4XX", {"description": "Client error", "content": content})
            responses.setdefault("5XX", {"description": "Server error or unavailable", "content": content})
    if _FASTAPI_VALIDATION_ERROR not in json.dumps(document):
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)  # only HTTPValidationError referred to it
    return document


def _documenting_error_shape(app: FastAPI) -> Callable[[], dict[str, Any]]:
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_error_shape(build())
        return app.openapi_schema

    return openapi


def install_error_handlers(app: FastAPI) -> None:
    app.openapi = _documenting_error_shape(app)  # type: ignore[method-assign]

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _api_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = validation_details(exc)
        if any(d["type"] == "json_invalid" for d in details):
            return error_response(400, "invalid_json", "The request body is not valid JSON", details)
        names = ", ".join(dict.fromkeys(d["field"] for d in details))
        return error_response(422, "validation_error", f"Invalid input: {names}", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return error_response(exc.status_code, code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(OperationalError)
    @app.exception_handler(ConnectionError)
    @app.exception_handler(OSError)
    async def _unavailable(_: Request, exc: Exception) -> JSONResponse:
        log.warning("dependency unavailable: %s", type(exc).__name__)
        return _api_error_response(ServiceUnavailable("A dependency is unavailable, try again"))

    @app.exception_handler(DBAPIError)
    async def _db(_: Request, exc: DBAPIError) -> JSONResponse:
        if exc.connection_invalidated:
            return _api_error_response(ServiceUnavailable("The database is unavailable, try again"))
        if getattr(exc.orig, "sqlstate", None) in TEXT_POSTGRES_CANNOT_STORE:
            # a NUL character (U+0000) in a text or JSON value: the client's input, not our failure
            return error_response(422, "validation_error", "Text must not contain NUL characters (U+0000)")
        if is_transient_database_error(getattr(exc.orig, "sqlstate", None)):
            log.warning("database busy or unavailable: %s", exc.orig)
            return _api_error_response(ServiceUnavailable("The database is busy or unavailable, try again"))
        log.exception("database error")
        return error_response(500, "internal_error", "Internal error")

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error_response(500, "internal_error", "Internal error")
