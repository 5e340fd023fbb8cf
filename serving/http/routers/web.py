"""The journalists' web form at ``/``, the review desk at ``/review`` (assets under ``/static``) and the
API reference at ``/docs`` (Swagger UI from the ``swagger-ui-bundle-v2`` package: nothing from a CDN)."""

from __future__ import annotations

from pathlib import Path

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


DOC_ASSETS = {"swagger-ui.css": "text/css", "swagger-ui-bundle.js": "text/javascript"}
"""The two files of Swagger UI that ``/docs`` loads; nothing else of the package is served."""


@router.get("/docs")
async def api_docs(state: State) -> Response:
    """The OpenAPI description (``/openapi.json``) rendered by Swagger UI, under the pages' strict CSP.

    FastAPI's own page loads Swagger UI from a CDN with an inline script: blank offline, and every
    visit told the CDN who uses the service."""
    page = state.static_dir / "docs.html"
    if not page.is_file():
        raise NotFound("the API reference page is not installed (serving/static/docs.html)")
    return FileResponse(page, media_type="text/html")


@router.get("/docs/assets/{name}")
async def api_docs_asset(name: str) -> Response:
    """One of :data:`DOC_ASSETS`, from the installed ``swagger-ui-bundle-v2``."""
    if name not in DOC_ASSETS:
        raise NotFound(f"no API reference asset {name!r}")
    from swagger_ui_bundle import swagger_ui_path

    return FileResponse(Path(str(swagger_ui_path)) / name, media_type=DOC_ASSETS[name])


@router.get("/review")
async def review_desk(state: State) -> Response:
    """The reviewers' page: the appeal and flagged queues, an item, a decision (reviewer keys sign in)."""
    page = state.static_dir / "review.html"
    if not page.is_file():
        raise NotFound("the review desk is not installed (serving/static/review.html)")
    return FileResponse(page, media_type="text/html")
