"""`./run vercel-dev`: the app served by Vercel's own dev server, on the local stack.

What `./run dev` serves through local/server.py, served instead by the pinned Vercel
CLI (`vercel dev --local`: no account, no link), so that its builder, routing and
runtime are the ones a deployment uses. It:

1. installs the pinned CLI (local/vercel_cli.py) and uses .venv/bin first on PATH:
   the CLI runs functions with the first `python3` it finds (3.12 is required by
   `vercel_runtime`) and builds them with `uv`;
2. starts the local stack as `./run dev` does (embedded PostgreSQL and Redis unless
   DATABASE_URL / REDIS_URL are set, migrations, demo data, the HubSpot stand-in, a
   development admin token and cron secret made up for this run);
3. writes `.env` (git-ignored, never bundled: excludeFiles): `vercel dev` hands its
   functions only what that file holds, not this shell's variables;
4. writes a dev copy of vercel.json without the `functions` block to .local/: the dev
   server refuses `maxDuration` and `memory` (DEV_BUILDER_RESULT_HAS_MAXDURATION),
   which `vercel build` needs;
5. runs `vercel dev --local --listen HOST:PORT` until Ctrl-C, then stops what it
   started. The first request to each function builds it (~10 s); later ones reuse it.

    ./run vercel-dev [--port 3000] [--no-seed]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from lib import migrations
from local import dev, server, stack, vercel_cli
from local.standins.hubspot import HubSpotStandIn

ROOT = vercel_cli.ROOT
ENV_FILE = ROOT / ".env"
DEV_CONFIG = ROOT / ".local" / "vercel-dev.json"
# Keys of a functions entry that the dev server refuses (it applies no limits anyway).
DEV_REFUSED_KEYS = frozenset({"maxDuration", "memory"})
# Seconds to wait for the dev server to stop after SIGINT before killing it.
STOP_TIMEOUT_S = 10.0


def dev_config(config: Mapping[str, object]) -> dict[str, object]:
    """vercel.json as `vercel dev` accepts it: each functions entry without the keys
    it refuses (includeFiles/excludeFiles stay), empty entries dropped."""
    out = dict(config)
    functions = config.get("functions")
    if isinstance(functions, dict):
        kept = {
            pattern: {k: v for k, v in settings.items() if k not in DEV_REFUSED_KEYS}
            for pattern, settings in functions.items()
        }
        kept = {pattern: settings for pattern, settings in kept.items() if settings}
        if kept:
            out["functions"] = kept
        else:
            out.pop("functions")
    return out


def write_dev_config(target: Path = DEV_CONFIG) -> Path:
    config = json.loads((ROOT / "vercel.json").read_text())
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(dev_config(config), indent=2) + "\n")
    return target


def write_env_file(values: Mapping[str, str], target: Path = ENV_FILE) -> None:
    """A dotenv file the CLI reads (KEY="value"; values here have no quotes or
    newlines). Readable by this user only: it holds this run's secrets."""
    for key, value in values.items():
        if any(c in value for c in '"\n\r'):
            raise ValueError(f"{key}: a value with a quote or newline cannot go in .env")
    text = "".join(f'{key}="{value}"\n' for key, value in values.items())
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(
            "# Written by ./run vercel-dev for `vercel dev` (local stack of this run).\n" + text
        )


def command(cli: Path, host: str, port: int, config: Path) -> list[str]:
    """`vercel dev` without an account, on host:port. Its local Queues, Schedules and
    Runtime Cache servers get free ports, so two checkouts can run side by side."""
    return [
        str(cli),
        "dev",
        "--local",
        "--yes",
        "--listen",
        f"{host}:{port}",
        "--local-config",
        str(config),
        "--queue-port",
        str(stack.free_port()),
        "--schedules-port",
        str(stack.free_port()),
        "--runtime-cache-port",
        str(stack.free_port()),
    ]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="./run vercel-dev", description=(__doc__ or "").split("\n", 1)[0]
    )
    parser.add_argument("--host", default=server.DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=server.DEFAULT_PORT)
    parser.add_argument("--no-seed", action="store_true", help="do not load the demo data")
    parser.add_argument("--pg-port", type=int, default=stack.DEFAULT_POSTGRES_PORT)
    parser.add_argument("--redis-port", type=int, default=stack.DEFAULT_REDIS_PORT)
    parser.add_argument(
        "--hubspot-port", type=int, default=0, help="the HubSpot stand-in's port (0: any free)"
    )
    return parser


def _start_stack(args: argparse.Namespace, services: dev.Services) -> tuple[HubSpotStandIn, str]:
    """The local stack as ./run dev prepares it, and .env for the dev server's
    functions; returns the HubSpot stand-in (to stop) and the banner's last lines."""
    import secrets

    from local import hubspot_demo

    dev.start_services(args, services)
    dev.prepare_database(services, load_demo_data=not args.no_seed)
    hubspot = hubspot_demo.start(args.hubspot_port, database_url=services.database_url)
    admin = dev.dev_admin()
    cron_secret = os.environ.get("CRON_SECRET") or secrets.token_urlsafe(24)
    write_env_file(
        {
            "DATABASE_URL": services.database_url,
            "REDIS_URL": services.redis_url,
            "HUBSPOT_BASE_URL": hubspot.url,
            "HUBSPOT_ACCESS_TOKEN": hubspot.token,
            "HUBSPOT_APP_ID": hubspot.app_id,
            "CRON_SECRET": cron_secret,
            **admin.env,
        }
    )
    host = "localhost" if args.host == server.DEFAULT_HOST else args.host
    base = f"http://{host}:{args.port}"
    banner = "\n".join(
        (
            f"\nvercel dev  {base}  (vercel@{vercel_cli.pinned_version()}, --local)",
            f"HubSpot     stand-in at {hubspot.url}",
            f"Cron        curl -H 'Authorization: Bearer {cron_secret}' {base}/api/cron/sync",
            admin.instructions(base),
        )
    )
    return hubspot, banner


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if server.port_in_use(args.host, args.port):
        print(f"port {args.port} on {args.host} is taken: pass --port", file=sys.stderr)
        return 2
    database_url = os.environ.get("DATABASE_URL")
    if database_url and not dev._is_local(database_url):
        print(
            "DATABASE_URL points at another machine: ./run vercel-dev migrates and seeds it;"
            " unset it to use the embedded database.",
            file=sys.stderr,
        )
        return 2
    signal.signal(signal.SIGTERM, dev._interrupt)
    services = dev.Services(database_url="", redis_url="")
    process: subprocess.Popen[bytes] | None = None
    hubspot: HubSpotStandIn | None = None
    try:
        cli = vercel_cli.ensure_cli()
        hubspot, banner = _start_stack(args, services)
        config = write_dev_config()
        dev.print_summary(services, waiting=True)
        print(banner, flush=True)
        process = subprocess.Popen(
            command(cli, args.host, args.port, config), cwd=ROOT, env=vercel_cli.cli_env()
        )
        code = process.wait()
        print(f"\nvercel dev exited with status {code}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nStopping.", flush=True)
    except (vercel_cli.VercelCliError, stack.StackError, migrations.MigrationError) as exc:
        print(f"\n./run vercel-dev failed: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
        if hubspot is not None:
            hubspot.stop()
        with contextlib.suppress(FileNotFoundError):
            ENV_FILE.unlink()
        services.stop_started()
    return 0


if __name__ == "__main__":
    sys.exit(main())
