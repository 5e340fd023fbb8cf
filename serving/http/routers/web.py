"""The journalists' web form at ``/`` and the review desk at ``/review`` (assets under ``/static``)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse

from serving.auth.sessions import session_owner
from serving.http.access import SESSION_COOKIE, open_mode, set_session
from serving.http.errors import NotFound
from serving.http.state import AppState, State, off_loop

router = APIRouter(include_in_schema=False)


def _needs_anonymous_session(state: AppState, cookie: str | None) -> bool:
    return open_mode(state) and (cookie is None or session_owner(state.store, cookie) is None)


@router.get("/")
async def index(request: Request, state: State) -> Response:
    """The web form; while the service is open, a fresh visitor gets an anonymous session."""
    page = state.static_dir / "index.html"
    if not page.is_file():
        raise NotFound("the web form is not installed (serving/static/index.html)")
    response: Response = FileResponse(page, media_type="text/html")
    if await off_loop(_needs_anonymous_session, state, request.cookies.get(SESSION_COOKIE)):
        await off_loop(set_session, response, state, None)
    return response


@router.get("/review")
async def review_desk(state: State) -> Response:
    """The reviewers' page: the appeal and flagged queues, an item, a decision (reviewer keys sign in)."""
    page = state.static_dir / "review.html"
    if not page.is_file():
        raise NotFound("the review desk is not installed (serving/static/review.html)")
    return FileResponse(page, media_type="text/html")
