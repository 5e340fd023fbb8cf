"""``trueframe keys create|list|revoke``: manage the service's API keys in the store.

The store is the one ``trueframe serve`` uses: ``TRUEFRAME_DATABASE_URL`` when set, else the SQLite
file in the data folder (``--data-dir``).
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from detector.settings import get_settings
from serving.auth.keys import ROLES, create_key, list_keys, revoke_key
from serving.cli import with_data_dir
from serving.http.errors import KeyNotFound
from serving.jobs.store import JobStore, open_store
from serving.jobs.webhooks import check_callback_url


def register(sub: Any) -> None:
    """Add the ``keys`` sub-command and its actions."""
    p = sub.add_parser("keys", help="create, list or revoke API keys of the HTTP service")
    p.add_argument("--data-dir", type=Path, default=None, help="service data folder (default: settings)")
    actions = p.add_subparsers(dest="keys_action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a key; it is printed once, store it now")
    create.add_argument("--name", default=None, help="a label shown by `keys list`")
    create.add_argument(
        "--role", choices=list(ROLES), default="submitter",
        help="submitter (analyse, appeal), reviewer (also review), admin (also metrics, erasure)",
    )  # fmt: skip
    create.add_argument(
        "--webhook-url", default=None, metavar="URL",
        help="receives review and appeal events of this key's jobs made without a callback_url",
    )  # fmt: skip
    create.set_defaults(func=run_create)
    listing = actions.add_parser("list", help="list key ids, names and states (never the keys)")
    listing.set_defaults(func=run_list)
    revoke = actions.add_parser("revoke", help="revoke a key by id; its requests fail at once")
    revoke.add_argument("key_id", metavar="ID")
    revoke.set_defaults(func=run_revoke)


def _store(args: argparse.Namespace) -> JobStore:
    return open_store(with_data_dir(get_settings(), args.data_dir))


def run_create(args: argparse.Namespace) -> int:
    settings = get_settings()
    if args.webhook_url is not None:
        check_callback_url(args.webhook_url, settings.serve.callback_allow_private, "--webhook-url")
    store = _store(args)
    try:
        new = create_key(store, args.name, args.role, args.webhook_url)
    finally:
        store.close()
    print(f"id:             {new.key.id}")
    print(f"role:           {new.key.role}")
    if new.key.webhook_url:
        print(f"webhook url:    {new.key.webhook_url}")
    print(f"key:            {new.token}")
    print(f"webhook secret: {new.webhook_secret}")
    print("Both are shown only now; the service keeps a hash of the key.")
    return 0


def run_list(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        keys = list_keys(store)
    finally:
        store.close()
    for key in keys:
        created = datetime.fromtimestamp(key.created_at, UTC).strftime("%Y-%m-%d %H:%M")
        state = "active" if key.revoked_at is None else "revoked"
        print(f"{key.id}\t{key.role}\t{state}\t{created}\t{key.name or ''}")
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        revoked = revoke_key(store, args.key_id)
    finally:
        store.close()
    if not revoked:  # printed as `error: key_not_found: ...`, exit 2, like every command's errors
        raise KeyNotFound(f"no active key {args.key_id!r} (unknown, or already revoked)", key_id=args.key_id)
    print(f"revoked {args.key_id}")
    return 0
