"""Serving the app with uvicorn under explicit limits: head timeout, keep-alive, connection cap.

uvicorn times out idle keep-alive connections but not a client that opens a connection and sends
its request head slowly (40 such clients held every connection open forever). :func:`guarded_h11`
makes an h11 protocol that closes a connection whose head has not fully arrived within
``serve.header_timeout_s`` (again after each response). Slow *bodies* are cut by
:class:`serving.http.upload.BodyLimit`; connections beyond ``serve.max_connections`` get uvicorn's
plain 503. A request h11 cannot parse (raw non-ASCII bytes in the URL...) is answered
``400 invalid_request`` in the JSON envelope, not uvicorn's plain text (only h11's own ``send_400_response``
is replaced: the app never sees such a request).
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from types import FrameType
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from detector.errors import InvalidRequest
from detector.settings import ServeSettings

UNPARSABLE = InvalidRequest(
    "the request is not valid HTTP/1.1 (a malformed request line or header; a URL must be ASCII: "
    "percent-encode other characters, as in ?name=%C3%A9)"
)
"""What a request h11 cannot parse is told (the app never sees it): raw non-ASCII bytes in the URL, a
malformed head line or header."""


def guarded_h11(header_timeout_s: float) -> type[H11Protocol]:
    """An h11 protocol class that closes connections whose request head is late."""

    class GuardedH11(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            super().connection_lost(exc)

        def _arm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            self._head_timer = self.loop.call_later(header_timeout_s, self._head_late)

        def send_400_response(self, msg: str) -> None:
            """The JSON error envelope instead of uvicorn's plain-text ``Invalid HTTP request received.``"""
            body = json.dumps({"error": UNPARSABLE.to_dict()}).encode()
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ]
            for event in (
                h11.Response(status_code=400, headers=headers),
                h11.Data(data=body),
                h11.EndOfMessage(),
            ):
                self.transport.write(self.conn.send(event) or b"")
            self.transport.close()

        def _head_late(self) -> None:
            waiting = self.cycle is None or self.cycle.response_complete
            if waiting and not self.transport.is_closing():
                self.transport.close()

    return GuardedH11


class DrainingServer(uvicorn.Server):
    """uvicorn's server that tells the app as soon as a stop signal arrives (``on_stop`` runs on the
    event loop), so requests still open can be answered at once instead of holding the exit."""

    def __init__(self, config: uvicorn.Config, on_stop: Callable[[], None]) -> None:
        super().__init__(config)
        self.on_stop = on_stop
        self.loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        await super().startup(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.loop is not None and not self.should_exit:
            self.loop.call_soon_threadsafe(self.on_stop)  # safe from a signal handler or a thread
        super().handle_exit(sig, frame)


def uvicorn_options(serve: ServeSettings) -> dict[str, Any]:
    """The uvicorn settings that carry the service's connection limits."""
    return {
        "http": guarded_h11(serve.header_timeout_s),
        "timeout_keep_alive": serve.keep_alive_s,
        "limit_concurrency": serve.max_connections,
    }
