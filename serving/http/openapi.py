"""``/openapi.json`` as the service answers: the error envelope, the key headers, the upload bodies.

FastAPI's own document promised ``422`` with its ``HTTPValidationError`` on every route with
parameters (the service answers ``400 invalid_request``), had no request body for ``POST /v1/analyze``
(it reads the raw body or a multipart ``file`` itself), and no security schemes. Routes declare the
typed errors they answer with :func:`errors`; :func:`install` adds those every route of a kind shares
(``400`` for parameters, ``401`` for the key, ``408``/``413`` for a body, ``503`` for the store).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

from detector.errors import (
    CorruptMedia,
    DecodeBudgetExceeded,
    DecodeTimeExceeded,
    EmptyMedia,
    InternalError,
    InvalidRequest,
    MediaTooLarge,
    MediaTooSmall,
    ModelError,
    NoFramesDecoded,
    NoVideoStream,
    StoreUnavailable,
    TooManyPixels,
    TrueframeError,
    UnsupportedMediaType,
    VideoTooLong,
    WeightsMissing,
)
from serving.http.errors import (
    JobNotFound,
    MediaLost,
    PayloadTooLarge,
    QueueFull,
    RequestTimeout,
    ServiceUnavailable,
    Unauthorized,
)


class ErrorDetail(BaseModel):
    """What went wrong: a stable code (public API), a sentence, and for some codes the numbers."""

    code: str = Field(description="stable error code, e.g. invalid_request, job_not_found, queue_full")
    message: str = Field(description="one sentence for people; never a traceback or a server path")
    details: dict[str, Any] | None = Field(None, description="e.g. limit and received for a size limit")


class ErrorBody(BaseModel):
    """Every error answer: ``{"error": {"code", "message", "details"?}}`` with the code's status."""

    error: ErrorDetail


ERROR_SCHEMA = "ErrorBody"
FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")
"""FastAPI's schemas of its own 422, which this service never sends (it answers 400 invalid_request)."""


def _described(kind: type[TrueframeError]) -> str:
    """One Markdown list item: the code, and the first line of its class's own docstring."""
    doc = (kind.__dict__.get("__doc__") or "").strip().split("\n")[0].replace("``", "`")
    return f"- `{kind.code}`" + (f": {doc}" if doc else "")


def errors(*kinds: type[TrueframeError]) -> dict[int | str, dict[str, Any]]:
    """FastAPI ``responses=`` for the typed errors a route answers, one entry per status."""
    by_status: dict[int | str, list[str]] = {}
    for kind in kinds:
        by_status.setdefault(kind.http_status, []).append(_described(kind))
    return {status: {"model": ErrorBody, "description": "\n".join(d)} for status, d in by_status.items()}


UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The image or video: the raw body (name it with `?name=`), or a multipart "
        "form whose field `file` holds it. Its type is read from its bytes, never from a header.",
        "content": {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            },
        },
    }
}
"""``openapi_extra`` of ``POST /v1/analyze``: the body it reads itself (Swagger's "Try it out" sends it)."""

ANALYZE_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"description": "a job (a video, or any upload with `callback_url`): poll `GET /v1/jobs/{id}`"},
    **errors(
        UnsupportedMediaType,
        EmptyMedia,
        CorruptMedia,
        MediaTooSmall,
        NoVideoStream,
        NoFramesDecoded,
        MediaTooLarge,
        TooManyPixels,
        VideoTooLong,
        DecodeBudgetExceeded,
        DecodeTimeExceeded,
        JobNotFound,
        MediaLost,
        QueueFull,
        WeightsMissing,
        ModelError,
        ServiceUnavailable,
    ),
}
"""``responses`` of ``POST /v1/analyze`` (a job awaited with ``wait=true`` fails with the same codes)."""

CSV_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "UTF-8 CSV with the header `item,kind,verdict,reviewed_at,hash`",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}
"""``openapi_extra`` of ``POST /v1/hash-lists/{name}/import``."""


def _add(operation: dict[str, Any], *kinds: type[TrueframeError]) -> None:
    """Add ``kinds`` to an operation's error responses, naming each code once per status."""
    responses = operation.setdefault("responses", {})
    ref = {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}
    for status, entry in errors(*kinds).items():
        found = responses.setdefault(
            str(status), {"description": "", "content": {"application/json": {"schema": ref}}}
        )
        lines = [line for line in found["description"].split("\n") if line.startswith("- `")]
        named = {line.split(":")[0] for line in lines}
        lines += [line for line in entry["description"].split("\n") if line.split(":")[0] not in named]
        found["description"] = "\n".join(lines)


def honest(schema: dict[str, Any]) -> dict[str, Any]:
    """FastAPI's document with its 422 replaced by this service's errors (changed in place)."""
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if "HTTPValidationError" in str(responses.get("422", "")):
                del responses["422"]
            if operation.get("parameters") or operation.get("requestBody"):
                _add(operation, InvalidRequest)
            if operation.get("requestBody"):
                _add(operation, RequestTimeout, PayloadTooLarge)
            if operation.get("security"):
                _add(operation, Unauthorized)
            if path.startswith("/v1/"):
                _add(operation, StoreUnavailable)
            _add(operation, InternalError)  # a bug, on any route: the traceback stays in the log
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    for name in FASTAPI_VALIDATION:
        schemas.pop(name, None)
    if ERROR_SCHEMA not in schemas:  # no route declared errors of its own
        error = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(error.pop("$defs", {}))
        schemas[ERROR_SCHEMA] = error
    return schema


def install(app: FastAPI) -> None:
    """Serve :func:`honest`'s document at ``/openapi.json`` (built once, on the first request)."""
    original: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = honest(original())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
