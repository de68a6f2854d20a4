"""A real transaction-mode pooler in front of a PostgreSQL, for the tests.

In production the functions reach PostgreSQL through Supabase's Supavisor in
transaction mode (port 6543): each transaction may run on a different server
connection, so a prepared statement, a `SET`, a session advisory lock or a `LISTEN`
outlives its transaction only by accident. Supavisor cannot be installed here; Debian's
`pgbouncer` (1.18: no prepared-statement support in transaction mode, as Supavisor's
transaction mode) is the same kind of pooler with the same rules, and it is the real
program, not a stand-in. `./run test` installs it with apt-get when it is missing and
the user is root (as in CI).

    with running(upstream_url) as pooler:
        pooled_url = pooler.url(database_url)   # same database, through the pooler

Trust authentication on loopback only, as the test servers it fronts use. PgBouncer
refuses to run as root; under root it runs as the `postgres` system user (or `nobody`),
and it is stopped with the process that started it, however that process ends.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from local.stack import free_port

# PgBouncer listens within milliseconds; ten seconds means it will not.
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
POLL_INTERVAL_S = 0.05
# More client connections than the suite's servers and torture clients ever open
# (gunicorn 2x8 threads, pools of 10 per process, sync children), and a server pool
# per database small enough that clients really share server connections.
MAX_CLIENT_CONN = 500
DEFAULT_POOL_SIZE = 10


# linux/prctl.h
PR_SET_PDEATHSIG = 1


class PoolerError(RuntimeError):
    """PgBouncer is missing or would not start (with its log's tail)."""


def binary() -> str | None:
    return shutil.which("pgbouncer") or next(
        (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if os.path.exists(p)), None
    )


@dataclass(frozen=True)
class Pooler:
    host: str
    port: int
    log: Path

    def url(self, database_url: str) -> str:
        """database_url, reached through the pooler (same database, user, options)."""
        return psycopg.conninfo.make_conninfo(database_url, host=self.host, port=str(self.port))

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""


def _run_as() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise PoolerError("pgbouncer will not run as root, and no postgres or nobody user exists")


def _become(account: pwd.struct_passwd | None) -> None:
    """In the child, before exec: drop root for `account` (PgBouncer refuses root),
    then ask the kernel to SIGTERM it when the test process dies, even by SIGKILL, so
    that no pooler outlives its suite. The order matters: a change of credentials
    clears the parent-death signal, so it is set last."""
    if account is not None:
        os.setgid(account.pw_gid)
        os.setuid(account.pw_uid)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _config(upstream: dict[str, str], port: int, workdir: Path, pool_size: int) -> str:
    host = upstream.get("host") or "127.0.0.1"
    upstream_port = upstream.get("port") or "5432"
    return f"""\
[databases]
; every database name the client asks for, on the upstream server
* = host={host} port={upstream_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {workdir / "userlist.txt"}
pool_mode = transaction
max_client_conn = {MAX_CLIENT_CONN}
default_pool_size = {pool_size}
logfile = {workdir / "pgbouncer.log"}
pidfile = {workdir / "pgbouncer.pid"}
log_connections = 0
log_disconnections = 0
; After a failed server login PgBouncer refuses new server connections for this long
; (default 15 s). Supavisor retries on demand; a short lockout keeps a database restart
; from looking 15 s longer than it was.
server_login_retry = 1
; Server connections idle this long are closed (default 600 s). The suite's pooler lives
; the whole session in front of the machine's PostgreSQL, whose 100 connections the
; rest of the suite needs too (a full run hit "too many clients" with them parked here).
server_idle_timeout = 5
"""


@contextlib.contextmanager
def running(upstream_url: str, *, pool_size: int = DEFAULT_POOL_SIZE) -> Iterator[Pooler]:
    """PgBouncer in transaction mode in front of the server of upstream_url, on a free
    loopback port, for the duration of the block; `pool_size` server connections per
    database and user."""
    program = binary()
    if program is None:
        raise PoolerError(
            "pgbouncer is not installed: apt-get install pgbouncer (./run test does, as root)"
        )
    upstream = psycopg.conninfo.conninfo_to_dict(upstream_url)
    user = str(upstream.get("user") or "postgres")
    account = _run_as()
    with tempfile.TemporaryDirectory(prefix="pgbouncer-") as tmp:
        workdir = Path(tmp)
        port = free_port()
        config = workdir / "pgbouncer.ini"
        config.write_text(
            _config({k: str(v) for k, v in upstream.items()}, port, workdir, pool_size)
        )
        (workdir / "userlist.txt").write_text(f'"{user}" ""\n')
        if account is not None:
            workdir.chmod(0o755)
            for path in (workdir, config, workdir / "userlist.txt"):
                os.chown(path, account.pw_uid, account.pw_gid)
        pooler = Pooler("127.0.0.1", port, workdir / "pgbouncer.log")
        # -q: PgBouncer also logs every line to stderr, and a pipe nobody drains
        # fills up and blocks it mid-write (seen: every client timed out). The log
        # file has it all; stderr only says why a start failed.
        with (workdir / "stderr.log").open("wb") as stderr:
            process = subprocess.Popen(
                [program, "-q", str(config)],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                cwd=workdir,
                preexec_fn=functools.partial(_become, account),  # noqa: PLW1509
            )
        try:
            _wait_ready(pooler, process, upstream_url)
            yield pooler
        finally:
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_ready(pooler: Pooler, process: subprocess.Popen[bytes], upstream_url: str) -> None:
    """Wait until a query goes through; PoolerError if PgBouncer exits or never does."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        code = process.poll()
        if code is not None:
            stderr = (pooler.log.parent / "stderr.log").read_text(errors="replace")
            raise PoolerError(
                f"pgbouncer exited with status {code}:\n{stderr}\n{pooler.log_text()[-2000:]}"
            )
        try:
            with psycopg.connect(
                pooler.url(upstream_url), autocommit=True, prepare_threshold=None, connect_timeout=2
            ) as conn:
                conn.execute("select 1")
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise PoolerError(
                    f"pgbouncer did not answer within {START_TIMEOUT_S:.0f} s:\n"
                    f"{pooler.log_text()[-2000:]}"
                ) from None
            time.sleep(POLL_INTERVAL_S)
