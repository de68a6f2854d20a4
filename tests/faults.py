"""A TCP proxy the tests can cut and restore: a dependency that goes away and comes
back while the system under test keeps running, without restarting anything."""

from __future__ import annotations

import contextlib
import socket
import threading
from urllib.parse import urlsplit, urlunsplit

# PostgreSQL's CommandComplete message for COMMIT: sent only once the commit is done.
# The end of a call's answer once PostgreSQL has committed it: the call's
# CommandComplete ("SELECT 1") then ReadyForQuery with status I (idle: the implicit
# transaction of lib/db.py's one-string query is committed before this is sent).
COMMIT_COMPLETE = b"C\x00\x00\x00\x0dSELECT 1\x00Z\x00\x00\x00\x05I"


class Proxy:
    """Forwards 127.0.0.1:<port> to a target. `cut()` drops every open connection and
    refuses new ones (accepted, then closed at once: the client sees the server go
    away); `restore()` forwards again; `lose_next_answer(marker)` cuts the connection
    of the next answer holding `marker` (PostgreSQL's COMMIT completion:
    COMMIT_COMPLETE) before passing it on: a commit whose answer is lost."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._down = threading.Event()
        self._lose = threading.Event()
        self._marker = b""
        self.answers_lost = 0
        self._closed = threading.Event()
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @classmethod
    def in_front_of(cls, url: str) -> tuple[Proxy, str]:
        """A proxy for the host:port of `url`, and the same URL pointing at it."""
        parts = urlsplit(url)
        proxy = cls(parts.hostname or "127.0.0.1", parts.port or 0)
        netloc = parts.netloc.rsplit("@", 1)
        host = f"127.0.0.1:{proxy.port}"
        new_netloc = f"{netloc[0]}@{host}" if len(netloc) == 2 else host
        return proxy, urlunsplit(parts._replace(netloc=new_netloc))

    def cut(self) -> None:
        self._down.set()
        with self._lock:
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def restore(self) -> None:
        self._down.clear()

    def lose_next_answer(self, marker: bytes = COMMIT_COMPLETE) -> None:
        self._marker = marker
        self._lose.set()

    def close(self) -> None:
        self._closed.set()
        self.cut()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._down.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open.update((client, upstream))
            for source, sink, answers in ((client, upstream, False), (upstream, client, True)):
                threading.Thread(
                    target=self._pump, args=(source, sink, answers), daemon=True
                ).start()

    def _pump(self, source: socket.socket, sink: socket.socket, answers: bool) -> None:
        try:
            while chunk := source.recv(65536):
                if answers and self._lose.is_set() and self._marker in chunk:
                    self._lose.clear()
                    self.answers_lost += 1
                    break
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
                with self._lock:
                    self._open.discard(sock)
