"""bench/quiet.py: who used the CPU while a benchmark ran. Never asserts amounts of
other work: the test machine is shared by design."""

from __future__ import annotations

import os
import subprocess

import psycopg

from bench.quiet import CpuWitness, postmaster_of


def test_a_process_that_is_not_a_postgres_backend_has_no_postmaster() -> None:
    assert postmaster_of(os.getpid()) is None
    assert postmaster_of(2**22 + 1) is None  # beyond Linux's pid range: no such process


def test_without_a_local_server_nothing_is_claimed() -> None:
    with CpuWitness(None) as witness:
        pass
    assert witness.others_cores() is None


def test_the_benchmarks_own_children_are_not_others(pg_admin_url: str) -> None:
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        row = conn.execute("select pg_backend_pid()").fetchone()
    assert row is not None
    postmaster = postmaster_of(int(row[0]))
    if postmaster is None:  # the test server runs elsewhere
        return
    # One second of a busy grandchild (reaped by `timeout`, which we reap): it is ours.
    # How much CPU it got depends on the rest of the machine, hence the low bar.
    with CpuWitness(postmaster) as witness:
        subprocess.run(["timeout", "1", "sh", "-c", "while :; do :; done"], check=False)
    ours, others = witness.ours_cores(), witness.others_cores()
    assert ours is not None
    assert ours > 0.3
    assert others is not None
    assert others >= 0.0
