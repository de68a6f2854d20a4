"""`./run dev`: the system on this laptop, with no account anywhere.

1. PostgreSQL and Redis: DATABASE_URL / REDIS_URL when set, otherwise the embedded
   servers of local/stack.py (started now, or reused if already running);
2. the migrations (lib.migrations.up);
3. the demo data (local/seed.py), loaded once;
4. prints how to connect, then serves the API functions and public/ on
   http://localhost:3000 (local/server.py: gunicorn, routed as Vercel routes) until
   Ctrl-C or SIGTERM, and stops the servers this run started (never ones it found
   running or was pointed at);
5. a development admin sign-in for the dashboard (/admin/): a JWT secret made up for
   this run (SUPABASE_JWT_SECRET of the API server) and an admin access token signed
   with it, printed (local/admin_token.py). Both die with the run.

    python -m local.dev              # set up, then serve
    python -m local.dev --port 3001  # serve on another port (--pg-port, --redis-port,
                                     # --hubspot-port likewise; --hubspot-port 0: any)
    python -m local.dev --no-wait    # set up, print, exit (no API server); the
                                     # database servers keep running
    python -m local.dev --stop       # stop the embedded servers

Every port is checked before anything starts: one that another program holds (a
second checkout's `./run dev`) ends the run with status 2 and a line naming the port
and its flag.
"""

from __future__ import annotations

import argparse
import errno
import functools
import os
import re
import signal
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import psycopg

from lib import migrations
from local import admin_token, hubspot_demo, server, stack
from local.seed import DEMO_CREDITS, DEMO_EMAIL, DEMO_STUDENT_ID, SeedError, seed

# Hosts where migrating and seeding cannot hurt anyone's real data.
LOCAL_HOSTS = frozenset({"", "localhost", "127.0.0.1", "::1"})


class PortTaken(Exception):
    """A port this run needs is held by another program. The message is one line
    that names the port and the flag that changes it."""

    def __init__(self, port: int, host: str, what: str, flag: str) -> None:
        self.port, self.flag = port, flag
        any_port = ", or 0 for any free one" if flag == "--hubspot-port" else ""
        super().__init__(
            f"port {port} on {host} ({what}) is taken by another program;"
            f" pass {flag} with another port{any_port}"
        )


def check_ports(args: argparse.Namespace, *, waiting: bool) -> None:
    """Raise PortTaken for the first port of this run that another program holds:
    PostgreSQL's and Redis's unless DATABASE_URL / REDIS_URL point elsewhere or our
    embedded server already runs (ensure_* then reuses it, or says it runs on another
    port); the API server's and the HubSpot stand-in's when `waiting` (serving).
    Checked before anything starts, so a second checkout's `./run dev` is told which
    flag to change instead of failing halfway with a traceback."""
    wanted: list[tuple[int, str, str, str]] = []
    if (
        not os.environ.get("DATABASE_URL")
        and stack.postgres_port(stack.DEFAULT_POSTGRES_DIR) is None
    ):
        wanted.append((args.pg_port, stack.HOST, "PostgreSQL", "--pg-port"))
    if not os.environ.get("REDIS_URL") and stack.redis_port(stack.DEFAULT_REDIS_DIR) is None:
        wanted.append((args.redis_port, stack.HOST, "Redis", "--redis-port"))
    if waiting:
        wanted.append((args.port, args.host, "the API server", "--port"))
        if args.hubspot_port != 0:
            wanted.append(
                (args.hubspot_port, hubspot_demo.HOST, "the HubSpot stand-in", "--hubspot-port")
            )
    for port, host, what, flag in wanted:
        if server.port_in_use(host, port):
            raise PortTaken(port, host, what, flag)


@dataclass
class Services:
    """What this run uses, and how to undo what it started."""

    database_url: str
    redis_url: str
    lines: list[str] = field(default_factory=list)  # for the summary
    stops: list[Callable[[], None]] = field(default_factory=list)

    def stop_started(self) -> None:
        """Stop the servers this run started, newest first."""
        while self.stops:
            self.stops.pop()()


def _relative(path: Path) -> str:
    return str(path.relative_to(stack.ROOT)) if path.is_relative_to(stack.ROOT) else str(path)


def _masked(url: str) -> str:
    """A URL fit to print: no password."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def _is_local(database_url: str) -> bool:
    host = psycopg.conninfo.conninfo_to_dict(database_url).get("host") or ""
    return all(part in LOCAL_HOSTS or part.startswith("/") for part in str(host).split(","))


def start_services(args: argparse.Namespace, services: Services) -> None:
    """Fill services with the database and Redis to use, starting embedded ones as
    needed. Each server started is registered for stopping as soon as it runs, so a
    failure further on still stops it."""
    env_database = os.environ.get("DATABASE_URL")
    if env_database:
        services.database_url = env_database
        services.lines.append(f"PostgreSQL  {_masked(env_database)}  (from DATABASE_URL)")
    else:
        pg_dir = stack.DEFAULT_POSTGRES_DIR
        running = stack.postgres_port(pg_dir) is not None
        services.database_url = stack.ensure_postgres(pg_dir, args.pg_port)
        if not running:
            services.stops.append(functools.partial(stack.stop_postgres, pg_dir))
        state = "was already running, is left running" if running else "started now"
        services.lines.append(f"PostgreSQL  {services.database_url}")
        services.lines.append(f"            embedded, data in {_relative(pg_dir)}, {state}")

    env_redis = os.environ.get("REDIS_URL")
    if env_redis:
        services.redis_url = env_redis
        services.lines.append(f"Redis       {_masked(env_redis)}  (from REDIS_URL)")
    else:
        redis_dir = stack.DEFAULT_REDIS_DIR
        running = stack.redis_port(redis_dir) is not None
        services.redis_url = stack.ensure_redis(redis_dir, args.redis_port)
        if not running:
            services.stops.append(functools.partial(stack.stop_redis, redis_dir))
        state = "was already running, is left running" if running else "started now"
        services.lines.append(f"Redis       {services.redis_url}")
        services.lines.append(f"            embedded, data in {_relative(redis_dir)}, {state}")


def prepare_database(services: Services, *, load_demo_data: bool) -> None:
    applied = migrations.up(services.database_url)
    total = len(migrations.discover())
    services.lines.append(
        f"Migrations  {len(applied)} applied now, {total} in all"
        if applied
        else f"Migrations  all {total} already applied"
    )
    if not load_demo_data:
        services.lines.append("Demo data   skipped (--no-seed)")
        return
    counts = seed(services.database_url)
    if counts["contacts"]:
        bookings = counts["past_bookings"] + counts["upcoming_bookings"]
        services.lines.append(
            f"Demo data   loaded: {counts['contacts']} students "
            f"({counts['contacts_without_hubspot_id']} not in HubSpot yet), "
            f"{counts['mock_exams']} mock exams, {bookings} bookings"
        )
    else:
        services.lines.append("Demo data   already loaded")
    services.lines.append(
        f"            log in as {DEMO_STUDENT_ID} / {DEMO_EMAIL} "
        f"({DEMO_CREDITS} credits of each kind on a fresh database)"
    )


def print_summary(services: Services, *, waiting: bool) -> None:
    database_url, redis_url = _masked(services.database_url), _masked(services.redis_url)
    print("\nLocal stack ready.\n")
    for line in services.lines:
        print(f"  {line}")
    print(f"\n  psql        {_relative(stack.postgres_bin('psql'))} '{database_url}'")
    print(f"  redis-cli   {_relative(stack.redis_bin('redis-cli'))} -u '{redis_url}'")
    print(f"  elsewhere   export DATABASE_URL='{database_url}' REDIS_URL='{redis_url}'")
    if waiting:
        what = "stops the servers started now" if services.stops else "exits"
        print(f"\nCtrl-C {what}.", flush=True)
    else:
        print("\nServers left running; `./run dev --stop` stops them.", flush=True)


def serve(
    services: Services, options: server.Options, *, hubspot_port: int = hubspot_demo.DEFAULT_PORT
) -> None:
    """Serve the API and pages until interrupted (KeyboardInterrupt, which SIGTERM
    raises too), on this run's database and Redis, with the HubSpot stand-in on
    `hubspot_port` (0: any free port; the URL printed says which). The server is a
    child process: gunicorn owns its own signals and forks its workers from a fresh
    interpreter. Raises ServerError if it cannot start or stops on its own, PortTaken
    if the stand-in's port was taken since check_ports()."""
    import secrets

    try:
        hubspot = hubspot_demo.start(port=hubspot_port, database_url=services.database_url)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise PortTaken(
            hubspot_port, hubspot_demo.HOST, "the HubSpot stand-in", "--hubspot-port"
        ) from None
    admin = dev_admin()
    # Made up per run, like the token: GET /api/cron/sync answers only with it.
    cron_secret = os.environ.get("CRON_SECRET") or secrets.token_urlsafe(24)
    env = {
        **os.environ,
        "DATABASE_URL": services.database_url,
        "REDIS_URL": services.redis_url,
        "HUBSPOT_BASE_URL": hubspot.url,
        "HUBSPOT_ACCESS_TOKEN": hubspot.token,
        "HUBSPOT_APP_ID": hubspot.app_id,
        "CRON_SECRET": cron_secret,
        **admin.env,
    }
    process = server.start(options, env)
    host = "localhost" if options.host == server.DEFAULT_HOST else options.host
    try:
        print(
            f"\nServing http://{host}:{options.port}  (API and public/; "
            f"gunicorn, {options.workers} workers x {options.threads} threads, "
            "restarts workers when loaded code changes)",
            flush=True,
        )
        print(
            f"HubSpot     stand-in at {hubspot.url}; first login of a HubSpot-only student:"
            " HSDEMO1 / hsdemo1@example.com",
            flush=True,
        )
        print(
            "Sync        in another shell: export DATABASE_URL="
            f"'{_masked(services.database_url)}' REDIS_URL='{_masked(services.redis_url)}'"
            f" HUBSPOT_BASE_URL='{hubspot.url}' HUBSPOT_ACCESS_TOKEN='{hubspot.token}'"
            f" HUBSPOT_APP_ID='{hubspot.app_id}';"
            " ./run sync\n"
            f"            or: curl -H 'Authorization: Bearer {cron_secret}'"
            f" http://{host}:{options.port}/api/cron/sync",
            flush=True,
        )
        print(admin.instructions(f"http://{host}:{options.port}"), flush=True)
        code = process.wait()
        raise server.ServerError(f"the API server exited with status {code}")
    finally:
        server.stop(process)
        hubspot.stop()


@dataclass(frozen=True)
class DevAdmin:
    """This run's admin sign-in: the API server's environment and the token."""

    env: dict[str, str]
    token: str

    def instructions(self, base: str) -> str:
        hours = admin_token.DEV_TOKEN_TTL_S // 3600
        return (
            f"Admin       {base}/admin/  signed in as {admin_token.DEV_ADMIN_EMAIL} by this link"
            f" (valid {hours} h, this run only):\n"
            f"            {base}/admin/#token={self.token}\n"
            f"            or paste the token: {self.token}"
        )


def dev_admin(environ: Mapping[str, str] | None = None) -> DevAdmin:
    """A JWT secret made up now and an admin token signed with it. The project's own
    SUPABASE_JWT_SECRET, if this shell has one, is never used: a token printed to a
    terminal must not be valid anywhere else. The issuer follows SUPABASE_URL when it
    is set, as the API server then checks it."""
    env = os.environ if environ is None else environ
    secret = admin_token.new_secret()
    project = env.get("SUPABASE_URL", "").strip().rstrip("/")
    token = admin_token.sign(secret, issuer=f"{project}/auth/v1" if project else None)
    return DevAdmin(env={"SUPABASE_JWT_SECRET": secret}, token=token)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM behaves as Ctrl-C: everything unwinds through the same cleanup."""
    del signum, frame
    raise KeyboardInterrupt


def stop_embedded() -> None:
    for name, port, stop, data_dir in (
        ("PostgreSQL", stack.postgres_port, stack.stop_postgres, stack.DEFAULT_POSTGRES_DIR),
        ("Redis", stack.redis_port, stack.stop_redis, stack.DEFAULT_REDIS_DIR),
    ):
        running = port(data_dir)
        stop(data_dir)
        state = f"stopped (was on port {running})" if running else "was not running"
        print(f"{name} in {_relative(data_dir)}: {state}")


def _port(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 1 to 65535, not {value}")
    return value


def _port_or_any(text: str) -> int:
    return 0 if text.strip() == "0" else _port(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="./run dev", description=(__doc__ or "").split("\n", 1)[0]
    )
    parser.add_argument(
        "--no-wait",
        action="store_true",
        help="set up and print, then exit and leave the servers running",
    )
    parser.add_argument("--stop", action="store_true", help="stop the embedded servers and exit")
    parser.add_argument("--no-seed", action="store_true", help="do not load the demo data")
    parser.add_argument(
        "--pg-port",
        type=_port,
        default=stack.DEFAULT_POSTGRES_PORT,
        help="the embedded PostgreSQL's port (default %(default)s)",
    )
    parser.add_argument(
        "--redis-port",
        type=_port,
        default=stack.DEFAULT_REDIS_PORT,
        help="the embedded Redis's port (default %(default)s)",
    )
    parser.add_argument(
        "--hubspot-port",
        type=_port_or_any,
        default=hubspot_demo.DEFAULT_PORT,
        help="the HubSpot stand-in's port (default %(default)s; 0: any free port)",
    )
    parser.add_argument("--host", default=server.DEFAULT_HOST, help="where the API server listens")
    parser.add_argument(
        "--port",
        type=_port,
        default=server.DEFAULT_PORT,
        help="the API server's port (default %(default)s)",
    )
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="migrate and seed a DATABASE_URL on another host (never production!)",
    )
    return parser


def _refusal(args: argparse.Namespace) -> str | None:
    """Why this run must not even begin (status 2), or None."""
    database_url = os.environ.get("DATABASE_URL")
    if database_url and not _is_local(database_url) and not args.allow_remote:
        return (
            "DATABASE_URL points at another machine, and ./run dev would migrate it and load"
            " demo data into it. Unset it to use the embedded database, or pass"
            " --allow-remote if that database is a disposable one."
        )
    try:
        check_ports(args, waiting=not args.no_wait)
    except PortTaken as exc:
        return f"./run dev: {exc}"
    return None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.stop:
        stop_embedded()
        return 0
    refusal = _refusal(args)
    if refusal:
        print(refusal, file=sys.stderr)
        return 2

    signal.signal(signal.SIGTERM, _interrupt)
    services = Services(database_url="", redis_url="")
    detached = False
    try:
        start_services(args, services)
        prepare_database(services, load_demo_data=not args.no_seed)
        print_summary(services, waiting=not args.no_wait)
        if args.no_wait:
            detached = True
            return 0
        # reload: an edited function or lib/ module is live on the next request.
        serve(
            services,
            server.Options(host=args.host, port=args.port, reload=True),
            hubspot_port=args.hubspot_port,
        )
    except KeyboardInterrupt:
        print("\nStopping.", flush=True)
    except PortTaken as exc:  # taken between check_ports() and now
        print(f"\n./run dev: {exc}", file=sys.stderr)
        return 2
    except (
        stack.StackError,
        migrations.MigrationError,
        SeedError,
        server.ServerError,
        psycopg.Error,
    ) as exc:
        print(f"\n./run dev failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if not detached:
            # A second Ctrl-C must not cut a shutdown short; each stop is bounded
            # by its own timeout (local/stack.py).
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            services.stop_started()
    return 0


if __name__ == "__main__":
    sys.exit(main())
