"""The service's log lines: timestamp, level, logger and message on stderr, from ``serve.log_level``.

Set up by ``trueframe serve`` in its own process and by the Ray ingress in its replica (whose stderr
Ray keeps in its worker log), never on import. Until 2026-12-04 nothing set it up: the service's
INFO lines (jobs recovered at start, stale jobs taken back, expired jobs purged) never appeared and
its warnings came without time or level. A process whose root logger already has a handler (a host
application, pytest) keeps its own.
"""

from __future__ import annotations

import logging

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str) -> None:
    """Log ``level`` and above to stderr in :data:`LOG_FORMAT` unless logging is already set up."""
    logging.basicConfig(level=level, format=LOG_FORMAT)
