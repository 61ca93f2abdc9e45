"""Running a replica: uvicorn on a socket we bind (port 0 picks a free port), graceful shutdown.

``serve`` blocks until SIGTERM/SIGINT: the listening socket closes, ``/readyz`` turns 503
(draining), requests already received finish (up to ``graceful_timeout_s``), then the models'
queues drain and the process exits. ``ReplicaThread`` runs the same server in a thread of the
calling process (tests, benchmarks). The command line (``robomr serve``, ``python -m
offload.serving``) is :func:`add_arguments` + :func:`serve_from_args`.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from offload.serving.app import Replica, create_app
from offload.serving.auth import AuthError, check_auth_setup
from offload.serving.config import ServeConfig
from offload.serving.model import ServedModel

_log = logging.getLogger("robomr.serve")


class ServeError(RuntimeError):
    """The replica cannot start (bad settings, port in use); the message says why."""


class _Server(uvicorn.Server):
    """uvicorn that marks the replica as draining as soon as a shutdown is asked for."""

    def __init__(self, config: uvicorn.Config, replica: Replica) -> None:
        super().__init__(config)
        self.replica = replica

    def handle_exit(self, sig: int, frame: Any) -> None:
        self.replica.draining = True
        super().handle_exit(sig, frame)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port); port 0 picks a free one.

    Raises:
        ServeError: the address is unusable or the port is taken.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must be IPPROTO_TCP, not the default 0: accepted sockets inherit it, and asyncio
    # sets TCP_NODELAY on a connection only when sock.proto == IPPROTO_TCP
    # (CPython Lib/asyncio/base_events.py, _set_nodelay). Without it a response written as
    # headers then body waits for the client's delayed ACK: +40 ms per back-to-back request.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as err:
        sock.close()
        raise ServeError(f"cannot listen on {host}:{port}: {err.strerror}") from err
    return sock


def _server(
    config: ServeConfig,
    token: str | None,
    sock: socket.socket,
    models: dict[str, ServedModel] | None,
) -> _Server:
    replica = Replica(config, token, models)
    uv = uvicorn.Config(
        create_app(replica),
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=int(config.graceful_timeout_s),
        lifespan="on",
    )
    return _Server(uv, replica)


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(
    config: ServeConfig,
    token: str | None,
    host: str = "127.0.0.1",
    port: int = 8700,
    allow_no_token: bool = False,
    ready_file: Path | None = None,
) -> int:
    """Runs one replica until SIGTERM/SIGINT (see the module docstring).

    Raises:
        ServeError: refused auth setup or an unusable address.
    """
    try:
        check_auth_setup(host, token, allow_no_token)
    except AuthError as err:
        raise ServeError(str(err)) from err
    sock = bind(host, port)
    url = url_of(sock)
    if ready_file is not None:  # tells a launcher the port; readiness is /readyz
        tmp = ready_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"url": url, "pid": os.getpid()}))
        tmp.replace(ready_file)
    print(f"robomr serve: {', '.join(config.models)} on {url} (policy {config.policy})", flush=True)
    _server(config, token, sock, None).run(sockets=[sock])
    return 0


class ReplicaThread:
    """A replica served from a background thread of this process, on a free loopback port.

    Use as a context manager; ``url`` is set once listening. ``stop()`` shuts it down gracefully.
    """

    def __init__(
        self,
        config: ServeConfig,
        token: str | None = None,
        models: dict[str, ServedModel] | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.sock = bind(host, 0)
        self.url = url_of(self.sock)
        self.server = _server(config, token, self.sock, models)
        self.thread = threading.Thread(target=self.server.run, args=([self.sock],), daemon=True)

    @property
    def replica(self) -> Replica:
        return self.server.replica

    def __enter__(self) -> ReplicaThread:
        self.thread.start()
        return self

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        """Blocks until every model is loaded.

        Raises:
            ServeError: loading failed or took longer than ``timeout_s``.
        """
        end = time.monotonic() + timeout_s
        while not self.replica.ready:
            if self.replica.load_error or time.monotonic() > end or not self.thread.is_alive():
                raise ServeError(f"replica not ready: {self.replica.load_error or 'timeout'}")
            time.sleep(0.02)

    def stop(self) -> None:
        self.replica.draining = True
        self.server.should_exit = True
        self.thread.join(timeout=60.0)

    def __exit__(self, *exc: object) -> None:
        self.stop()
