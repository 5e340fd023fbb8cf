"""``trueframe serve``: the HTTP service and web form, on Ray Serve (default) or in one process.

Embedded defaults: 127.0.0.1:8000, the SQLite job store under the data folder (``TRUEFRAME_DATA_DIR``,
default ``.trueframe-data``; ``TRUEFRAME_DATABASE_URL`` names a PostgreSQL store instead), the
weights cache of the settings, ``serving/serve_config.yaml``. Analyses consult the store's
known-media hash lists.
Runs until Ctrl-C (or SIGTERM), then drains the ingress (waiting requests get their job's 202) and shuts
Serve and Ray down. A store that cannot be reached at
start is reported before anything starts: ``error: store_unavailable: cannot reach the database at
<url without password>: <reason>``, exit 2; so are the configured models, their weights, the fusion
file and the C2PA trust files (:mod:`serving.preflight`).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

from detector.errors import InvalidRequest
from detector.settings import ServeSettings, Settings, load_settings
from serving.cli import with_data_dir
from serving.logsetup import configure_logging
from serving.preflight import check_configuration

RAY_START_HINT = "starting Ray and the deployments (the first start takes a few seconds)..."


def register(sub: Any) -> None:
    """Add the ``serve`` sub-command."""
    p = sub.add_parser("serve", help="run the HTTP API and the web form")
    p.add_argument("--host", default=None, help="bind address (default: env, then config, then 127.0.0.1)")
    p.add_argument("--port", type=port_number, default=None, help="port (default 8000)")
    p.add_argument(
        "--config", type=Path, default=None, help="Ray Serve config YAML (default: serving/serve_config.yaml)"
    )
    p.add_argument(
        "--data-dir", type=Path, default=None, help="job store and uploads (default .trueframe-data)"
    )
    p.add_argument("--no-ray", action="store_true", help="run the same app in this process under uvicorn")
    p.set_defaults(func=run_serve)


def port_number(text: str) -> int:
    """An ``argparse`` type: a TCP port within ``TRUEFRAME_SERVE__PORT``'s bounds, 0 to 65535 (0: any
    free port); 99999 listened on 34463 (the number mod 65536) and -5 failed in uvicorn, exit 3."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    bounds = ServeSettings.model_fields["port"].metadata
    low = next(b.ge for b in bounds if hasattr(b, "ge"))
    high = next(b.le for b in bounds if hasattr(b, "le"))
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"must be between {low} and {high}, not {value}")
    return value


def _settings(args: argparse.Namespace) -> Settings:
    """The settings with ``--data-dir``, whose folder is made here (a typed error when it cannot be)."""
    return with_data_dir(load_settings(), args.data_dir)


def run_serve(args: argparse.Namespace) -> int:
    """Start the service and block until interrupted."""
    from serving.ray.app import load_config

    settings = _settings(args)
    configure_logging(settings.serve.log_level)
    check_configuration(settings)  # one line and exit 2, not a service that fails every upload
    config = load_config(args.config)
    host = args.host or _pick(settings, config, "host")
    port = args.port if args.port is not None else int(_pick(settings, config, "port"))
    if args.no_ray:
        return _serve_in_process(settings, host, port)
    return _serve_ray(settings, config, host, port)


def _pick(settings: Settings, config: Any, name: str) -> Any:
    """``TRUEFRAME_SERVE__HOST``/``PORT`` when set, else the config's ``http_options``, else the default."""
    if name in settings.serve.model_fields_set:
        return getattr(settings.serve, name)
    return config.http.get(name, getattr(settings.serve, name))


def _serve_in_process(settings: Settings, host: str, port: int) -> int:
    import uvicorn

    from serving.analyzer import InProcessAnalyzer
    from serving.http.app import create_app
    from serving.http.server import DrainingServer, uvicorn_options
    from serving.jobs.store import open_store
    from serving.known.lookup import StoreKnownMedia

    socks = listen_sockets(host, port)  # a port in use: one line and exit 2 before anything starts
    store = open_store(settings)
    app = create_app(settings, InProcessAnalyzer(settings, known=StoreKnownMedia(store)), store)
    port = socks[0].getsockname()[1]  # the port taken for --port 0
    print(f"trueframe (in process) at http://{host}:{port}/  (Ctrl-C to stop)", flush=True)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", **uvicorn_options(settings.serve))
    DrainingServer(config, on_stop=app.state.trueframe.runner.drain).run(sockets=socks)
    return 0


def listen_sockets(host: str, port: int) -> list[socket.socket]:
    """Sockets bound to every address ``host`` resolves to (``localhost`` may be ``::1`` and
    ``127.0.0.1``), on one port, as uvicorn binds them (``SO_REUSEADDR``; IPv6 sockets IPv6-only);
    a port in use or an address this machine does not have is ``invalid_request`` naming them. Until
    2026-12-04 the service printed its address, then uvicorn logged the bind error and the command
    exited 3. With port 0 every address takes the port the first one got."""
    where = "--host/--port, TRUEFRAME_SERVE__HOST/__PORT or the serve config's http_options"
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise InvalidRequest(f"cannot listen on {host}:{port}: {exc.strerror} ({where})") from None
    bound: list[socket.socket] = []
    for family, kind, proto, _, address in dict.fromkeys(found):  # each address once
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            sock.bind((address[0], bound[0].getsockname()[1], *address[2:]) if bound else address)
        except OSError as exc:
            sock.close()
            for other in bound:
                other.close()
            raise InvalidRequest(f"cannot listen on {host}:{port}: {exc.strerror} ({where})") from None
        bound.append(sock)
    return bound


def _serve_ray(settings: Settings, config: Any, host: str, port: int) -> int:
    from serving.jobs.store import check_store
    from serving.ray.app import drain_service, run_service, running_ingress_replicas, stop_service
    from serving.ray.runtime import init_ray

    check_store(settings)  # a database that is down: one line and exit 2 now, not a failed deploy later
    if not os.environ.get("RAY_ADDRESS"):  # a local Ray's proxy binds here: a port in use, likewise
        for sock in listen_sockets(host, port):  # (a cluster's proxies bind on their own nodes)
            sock.close()
    print(RAY_START_HINT, flush=True)
    started = time.perf_counter()
    try:
        init_ray()
        handle = run_service(settings, config, host, port)
        took = time.perf_counter() - started
        print(f"trueframe at http://{host}:{port}/  (started in {took:.1f} s; Ctrl-C to stop)", flush=True)
        _wait_for_stop_signal()
        print("shutting down...", flush=True)
        drain_service(handle, running_ingress_replicas())
    finally:
        stop_service()
    return 0


def _wait_for_stop_signal() -> None:
    """Block until SIGINT or SIGTERM (installed after ``ray.init``, which sets its own handlers)."""
    stop = threading.Event()
    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in handled}
    try:
        while not stop.wait(1.0):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
