"""Known-media hash lists: list, export and import as CSV (hashes and verdicts only), delete.

Reviewers and admins list and export; admins import and delete (an imported list changes every
later analysis). The CSV format is described in :mod:`serving.known.lists`.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request, Response

from detector.errors import InvalidRequest
from serving.http.access import Caller, require_role
from serving.http.errors import Forbidden, ListNotFound, PayloadTooLarge
from serving.http.openapi import CSV_BODY, errors
from serving.http.state import State, off_loop
from serving.known import lists

router = APIRouter(prefix="/v1/hash-lists", tags=["known media"])
MAX_CSV_BYTES = 64_000_000


@router.get("", responses=errors(Forbidden))
async def all_lists(caller: Caller, state: State) -> dict[str, Any]:
    """Every hash list with its item and hash counts."""
    require_role(caller, "reviewer", "admin")
    return {"lists": [asdict(s) for s in await off_loop(lists.summaries, state.store)]}


@router.get("/{name}/export", response_class=Response, responses=errors(Forbidden, ListNotFound))
async def export_list(name: str, caller: Caller, state: State) -> Response:
    """The list as CSV: ``item,kind,verdict,reviewed_at,hash``, one row per hash."""
    require_role(caller, "reviewer", "admin")
    text = await off_loop(lists.export_csv, state.store, name)
    headers = {"Content-Disposition": f'attachment; filename="trueframe-{name}.csv"'}
    return Response(text, media_type="text/csv; charset=utf-8", headers=headers)


@router.post("/{name}/import", responses=errors(Forbidden), openapi_extra=CSV_BODY)
async def import_list(
    name: str, request: Request, caller: Caller, state: State, replace: bool = False
) -> dict[str, Any]:
    """Add a CSV's items to the list (created when missing); ``replace=true`` swaps its content."""
    require_role(caller, "admin")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_CSV_BYTES:
            raise PayloadTooLarge(f"a hash-list CSV may have at most {MAX_CSV_BYTES} bytes")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"a hash-list CSV must be UTF-8 text: byte {exc.start} is not") from exc
    items, hashes = await off_loop(lists.import_csv, state.store, name, text, replace)
    return {"list": name, "items": items, "hashes": hashes, "replaced": replace}


@router.delete("/{name}", status_code=204, responses=errors(Forbidden, ListNotFound))
async def delete_list(name: str, caller: Caller, state: State) -> Response:
    require_role(caller, "admin")
    await off_loop(lists.delete_list, state.store, name)
    return Response(status_code=204)
