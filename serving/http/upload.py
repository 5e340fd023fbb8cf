"""Upload intake: a byte limit enforced while the body streams in, and reading multipart or raw bodies.

:class:`BodyLimit` is pure ASGI middleware: it answers ``413 payload_too_large`` at once when
``Content-Length`` is over the limit, and otherwise counts body chunks as the app reads them,
failing the read as soon as the count passes the limit, so an oversize upload is refused before
the client has finished sending it (the connection is then closed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from detector.errors import EmptyMedia, InvalidRequest
from serving.http.errors import PayloadTooLarge

MULTIPART = "multipart/form-data"


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` on paths starting with ``prefix``."""

    def __init__(self, app: ASGIApp, max_bytes: int, prefix: str = "/v1/analyze") -> None:
        self.app, self.max_bytes, self.prefix = app, max_bytes, prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _send_413(send, self._error(int(declared)))
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
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
        except PayloadTooLarge as exc:
            if started:
                raise
            await _send_413(send, exc)

    def _error(self, size: int) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"the upload passed the limit of {self.max_bytes} bytes", limit=self.max_bytes, received=size
        )


async def _send_413(send: Send, exc: PayloadTooLarge) -> None:
    body = json.dumps({"error": exc.to_dict()}).encode()
    headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@dataclass(frozen=True)
class Upload:
    data: bytes
    name: str | None


async def read_upload(request: Request, name: str | None) -> Upload:
    """The uploaded bytes: multipart field ``file``, or the raw body (name from ``?name=``)."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(MULTIPART):
        async with request.form(max_files=1, max_fields=16) as form:
            field = form.get("file")
            if not isinstance(field, UploadFile):
                raise InvalidRequest("multipart upload needs a file field named 'file'")
            data = await field.read()
            name = name or field.filename
    else:
        data = await request.body()
    if not data:
        raise EmptyMedia("the upload is empty (0 bytes)")
    return Upload(data=data, name=name)
