"""Network faults on demand, for the "Redis is down / hung / back" tests.

TcpProxy forwards a local port to a real server and can be stopped (connections are
then refused) and started again on the same port (the server is "back"). Blackhole
accepts connections and never answers: a hung server. Both count the connections
they accept, so a test can tell whether a client touched the network at all.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType
from typing import Self

HOST = "127.0.0.1"
# How often the accept loops look at their stop flag; keeps stop() prompt.
POLL_S = 0.02


class _Listener:
    def __init__(self, port: int) -> None:
        self._sock = socket.create_server((HOST, port))  # SO_REUSEADDR on POSIX
        self._sock.settimeout(POLL_S)
        self.port: int = self._sock.getsockname()[1]
        self.accepted = 0
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                self._open.append(conn)
            self.handle(conn)

    def handle(self, conn: socket.socket) -> None:
        """Called for each accepted connection (in the accept thread)."""

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.append(sock)

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        self._sock.close()
        self.drop_connections()

    def drop_connections(self) -> None:
        """Close every connection accepted so far (as a server restart or an idle
        timeout does); new ones are still accepted until stop()."""
        with self._lock:
            sockets, self._open = self._open, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class Blackhole(_Listener):
    """Accepts TCP connections and never answers."""

    def __init__(self, port: int = 0) -> None:
        super().__init__(port)


class TcpProxy(_Listener):
    """Forwards HOST:port to `target`, byte for byte."""

    def __init__(self, target: tuple[str, int], port: int = 0) -> None:
        self._target = target
        super().__init__(port)

    def handle(self, conn: socket.socket) -> None:
        try:
            # The target is on loopback: 5 s only bounds a wedged one.
            upstream = socket.create_connection(self._target, timeout=5)
        except OSError:
            conn.close()
            return
        upstream.settimeout(None)
        conn.settimeout(None)
        self._track(upstream)
        for source, sink in ((conn, upstream), (upstream, conn)):
            threading.Thread(target=_pump, args=(source, sink), daemon=True).start()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    return port
