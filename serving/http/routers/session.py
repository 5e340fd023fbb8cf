"""``/v1/session``: the web form exchanges a key (sent once) for a session cookie, and signs out."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from serving.auth.sessions import end_session
from serving.http.access import SESSION_COOKIE, Caller, set_session
from serving.http.state import State, off_loop

router = APIRouter(prefix="/v1/session", tags=["access"])


@router.post("", status_code=204)
async def start_session(caller: Caller, state: State) -> Response:
    """Exchange a key (sent once, in a header) for the web form's session cookie."""
    owner = caller.owner if caller.via == "key" else None
    response = Response(status_code=204)
    await off_loop(set_session, response, state, owner)
    return response


@router.get("")
async def who_am_i(caller: Caller) -> dict[str, str]:
    """Who the caller is to the service: how it signed in and its key's role (the review page asks)."""
    return {"via": caller.via, "role": caller.role, "owner": caller.owner}


@router.delete("", status_code=204)
async def stop_session(request: Request, state: State) -> Response:
    """Sign out: forget the session and clear the cookie."""
    if cookie := request.cookies.get(SESSION_COOKIE):
        await off_loop(end_session, state.store, cookie)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
