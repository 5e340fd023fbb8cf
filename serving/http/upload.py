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
SMALL_BODY_BYTES = 262_144
"""Largest body of a ``/v1/`` request that carries no media and no hash list (a review, an appeal,
a sign-in): their JSON text fields hold at most 12,000 characters, 12 bytes each when escaped. Before,
such a body could be as large as a video upload and was read and parsed whole before its 400."""


def carries_files(path: str) -> bool:
    """Whether ``path`` takes an upload (media, or a hash-list CSV) rather than a small JSON body."""
    return path == "/v1/analyze" or (path.startswith("/v1/hash-lists/") and path.endswith("/import"))


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` on the upload paths (:func:`carries_files`) and over
    :data:`SMALL_BODY_BYTES` on every other path starting with ``prefix``."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float = 30.0, prefix: str = "/v1/") -> None:
        self.app, self.upload_bytes, self.timeout_s, self.prefix = app, max_bytes, timeout_s, prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        upload = carries_files(scope["path"])
        limit = self.upload_bytes if upload else SMALL_BODY_BYTES
        what = "the upload" if upload else "the request body"
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _send_error(send, _declared_error(what, limit, int(declared)))
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
                if seen > limit:
                    message_text = f"{what} passed the limit of {limit} bytes"
                    raise PayloadTooLarge(message_text, limit=limit, received=seen)
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


def _declared_error(what: str, limit: int, declared: int) -> PayloadTooLarge:
    """Refused on its ``Content-Length`` alone: nothing was received, so the detail says declared."""
    text = f"{what} declares {declared} bytes; the limit is {limit}"
    return PayloadTooLarge(text, limit=limit, declared=declared)


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
