"""A stdlib HTTP server on a loopback port, served from a daemon thread: the plumbing shared by the tests'
Hub-compatible server (hub_server.py) and OpenID Connect provider (oidc_server.py); and the two
addresses of a server that is not there: a closed port and a black hole."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


class LoopbackServer:
    """``handler`` served on ``host``:``port`` (0: a free port): ``start()``, ``url``, ``stop()``."""

    def __init__(
        self, handler: type[BaseHTTPRequestHandler], name: str, host: str = "127.0.0.1", port: int = 0
    ):
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://{host}:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, name=name, daemon=True)

    def start(self) -> Self:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def closed_port_url() -> str:
    """``http://127.0.0.1:PORT`` where nothing listens: a connection is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


@contextlib.contextmanager
def black_hole() -> Iterator[str]:
    """``http://127.0.0.1:PORT`` that neither takes nor refuses a connection, like a host behind a
    firewall that drops packets: its listening socket's queue is full, so the kernel drops new
    connection requests."""
    with socket.socket() as listener, contextlib.ExitStack() as fillers:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        address = listener.getsockname()
        for _ in range(8):
            filler = fillers.enter_context(socket.socket())
            filler.settimeout(0.3)
            try:
                filler.connect(address)
            except TimeoutError:
                break  # the queue is full: connections now go unanswered
        else:
            raise RuntimeError(f"connections to {address} were all taken; no black hole")
        yield f"http://127.0.0.1:{address[1]}"
