"""Upload intake: byte limit and read timeout enforced while the body streams in; multipart or raw bodies.

:class:`BodyLimit` is pure ASGI middleware: it answers ``413 payload_too_large`` at once when
``Content-Length`` is over the limit, and otherwise counts body chunks as the app reads them,
failing the read as soon as the count passes the limit, so an oversize upload is refused before
the client has finished sending it (the connection is then closed). A client that stalls for
``serve.body_timeout_s`` between two chunks gets ``408 request_timeout`` and its connection closed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import anyio
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from detector.errors import EmptyMedia, InvalidRequest
from serving.http.errors import PayloadTooLarge, RequestTimeout

MULTIPART = "multipart/form-data"
MAX_NAME_CHARS = 255
"""Longest file name accepted, from ``?name=`` (checked by the route) or a multipart part's filename."""


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` on paths starting with ``prefix``."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float = 30.0, prefix: str = "/v1/") -> None:
        self.app, self.max_bytes, self.timeout_s, self.prefix = app, max_bytes, timeout_s, prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _send_error(send, self._declared_error(int(declared)))
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            try:
                with anyio.fail_after(self.timeout_s):
                    message = await receive()
            except TimeoutError:
                raise RequestTimeout(f"no body data for {self.timeout_s:g} s") from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise self._error(seen)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except (PayloadTooLarge, RequestTimeout) as exc:
            if started:
                raise
            await _send_error(send, exc)

    def _error(self, size: int) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"the upload passed the limit of {self.max_bytes} bytes", limit=self.max_bytes, received=size
        )

    def _declared_error(self, declared: int) -> PayloadTooLarge:
        """Refused on its ``Content-Length`` alone: nothing was received, so the detail says declared."""
        return PayloadTooLarge(
            f"the upload declares {declared} bytes; the limit is {self.max_bytes}",
            limit=self.max_bytes,
            declared=declared,
        )


async def _send_error(send: Send, exc: PayloadTooLarge | RequestTimeout) -> None:
    body = json.dumps({"error": exc.to_dict()}).encode()
    headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": exc.http_status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@dataclass(frozen=True)
class Upload:
    data: bytes
    name: str | None


def check_name(name: str | None) -> None:
    """A client's file name is only echoed, but it is stored: at most 255 characters, no NUL (which
    no text column of PostgreSQL can hold)."""
    if name is None:
        return
    if len(name) > MAX_NAME_CHARS:
        raise InvalidRequest(f"the file name is longer than {MAX_NAME_CHARS} characters")
    if "\x00" in name:
        raise InvalidRequest("the file name contains a NUL character")


async def read_upload(request: Request, name: str | None) -> Upload:
    """The uploaded bytes: multipart field ``file``, or the raw body (name from ``?name=``)."""
    check_name(name)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(MULTIPART):
        async with request.form(max_files=1, max_fields=16) as form:
            field = form.get("file")
            if not isinstance(field, UploadFile):
                found = ", ".join(repr(k) for k in form) or "none"
                raise InvalidRequest(
                    "multipart upload needs a complete file field named 'file' (fields read: "
                    f"{found}; a body cut off before its closing boundary has none)"
                )
            name = name or field.filename
            check_name(name)
            data = await field.read()
    else:
        data = await request.body()
    if not data:
        raise EmptyMedia("the upload is empty (0 bytes)")
    return Upload(data=data, name=name)
