"""Who calls: an API key header, else the web form's session cookie, else anonymous while open."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request, Response, Security
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from serving.auth.keys import Principal, Role, active_role, any_key_ever, authenticate_key, key_webhook_secret
from serving.auth.sessions import create_session, session_owner
from serving.http.errors import Forbidden, Unauthorized
from serving.http.state import AppState, State, off_loop

SESSION_COOKIE = "trueframe_session"

BEARER = HTTPBearer(
    scheme_name="bearer", auto_error=False, description="an API key: `Authorization: Bearer tfk_...`"
)
API_KEY = APIKeyHeader(
    name="X-API-Key", scheme_name="apiKey", auto_error=False, description="an API key: `X-API-Key: tfk_...`"
)
SESSION = APIKeyCookie(
    name=SESSION_COOKIE,
    scheme_name="session",
    auto_error=False,
    description="the web form's session, from `POST /v1/session` with a key. While no key exists "
    "(a fresh local install), `/v1` also answers anonymous callers.",
)
"""The three ways to sign in, as OpenAPI security schemes (``/docs``'s Authorize button). They only
declare them: :func:`principal` reads the headers and the cookie itself."""


def _token(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("x-api-key")


def open_mode(state: AppState) -> bool:
    """Anonymous use is allowed: configured open, or no key was ever created (and keys are not required).

    Revoking every key does not re-open the service: once a key has existed it stays closed unless
    ``serve.allow_anonymous`` says otherwise. Blocking (store read): call off the event loop.
    """
    serve = state.settings.serve
    if serve.api_keys_required:
        return False
    return serve.allow_anonymous or not any_key_ever(state.store)


def _same_origin(request: Request) -> None:
    """Cookie-authorised requests must not come from another site (besides ``SameSite=Strict``)."""
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
        raise Unauthorized("the session cookie is not accepted on cross-site requests")


def _resolve(state: AppState, token: str | None, cookie: str | None) -> Principal:
    """The caller from a key, a session or anonymous access (blocking store reads)."""
    settings = state.settings
    if token:
        found = authenticate_key(state.store, token)
        if found is None:
            raise Unauthorized("the API key is not valid (unknown or revoked)")
        return found
    is_open = open_mode(state)
    owner = session_owner(state.store, cookie) if cookie else None
    role = None if owner is None else active_role(state.store, owner)
    if owner is not None and owner.startswith("key:") and role is None:
        raise Unauthorized("the key behind this session was revoked; sign in again")
    if owner is not None and (role is not None or is_open):
        secret = key_webhook_secret(state.store, owner) or settings.serve.webhook_secret
        return Principal(owner, secret, "session", role or "submitter")
    if is_open:
        return Principal(owner="anonymous", webhook_secret=settings.serve.webhook_secret, via="anonymous")
    raise Unauthorized("send an API key: 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")


async def principal(
    request: Request,
    state: State,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)] = None,
    _api_key: Annotated[str | None, Security(API_KEY)] = None,
    _session: Annotated[str | None, Security(SESSION)] = None,
) -> Principal:
    """The calling principal; 401 ``unauthorized`` when a key is needed and none is valid.

    The ``_*`` parameters only put the security schemes in the OpenAPI document."""
    token = _token(request)
    found = await off_loop(_resolve, state, token, request.cookies.get(SESSION_COOKIE))
    if found.via == "session":
        _same_origin(request)
    return found


Caller = Annotated[Principal, Depends(principal)]


def require_role(caller: Principal, *roles: Role) -> None:
    """403 ``forbidden`` unless the caller's key has one of ``roles``."""
    if caller.role not in roles:
        raise Forbidden(f"this needs a key with role {' or '.join(roles)}; yours is {caller.role}")


def set_session(response: Response, state: AppState, owner: str | None) -> None:
    """Open a session for ``owner`` (anonymous when None) and set its cookie (blocking store write)."""
    ttl_s = state.settings.serve.session_ttl_hours * 3600.0
    token, _ = create_session(state.store, owner, ttl_s)
    response.set_cookie(
        SESSION_COOKIE, token, max_age=int(ttl_s), path="/", httponly=True, samesite="strict",
        secure=False,  # the default bind is loopback over plain HTTP; a TLS proxy may add Secure
    )  # fmt: skip
