"""``DELETE /v1/keys/{id}/data``: erase one key's submissions, reports, reviews and hashes (admin)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from serving.auth.keys import get_key
from serving.http.access import Caller, require_role
from serving.http.errors import Forbidden, KeyNotFound, echoed
from serving.http.openapi import errors
from serving.http.state import State, off_loop
from serving.privacy import erase_owner

router = APIRouter(prefix="/v1/keys", tags=["privacy"])


@router.delete("/{key_id}/data", responses=errors(Forbidden, KeyNotFound))
async def erase_key_data(key_id: str, caller: Caller, state: State) -> dict[str, Any]:
    """Everything kept about the key's uploads, gone at once (see :mod:`serving.privacy`)."""
    require_role(caller, "admin")
    if await off_loop(get_key, state.store, key_id) is None:
        raise KeyNotFound(f"no key {echoed(key_id)}")
    counts = await off_loop(erase_owner, state.store, f"key:{key_id}")
    return {"key_id": key_id, "erased": counts}
