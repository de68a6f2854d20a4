"""The test session stops the embedded servers it started, and only those.

A pytest plugin (registered by tests/conftest.py): the session holds the lease of
local/stack_lease.py on every data directory the suite may start a server in, from its
start to its end, and at its end stops the servers a run started there. Under xdist the
controller holds the lease, for all its workers, and stops the servers once they have
all finished; a worker does nothing of its own.

That covers the reliability part's servers (.local/reliability-*, reliability/stack.py)
and also the suite's own test servers (.local/test-*, used when TEST_DATABASE_URL /
TEST_REDIS_URL are unset), which used to be left running for the next run. Keeping them
bought nothing worth a server listening after `./run test` has ended: their data
directories stay, so the next session starts them again in about 0.2 s (initdb, the
slow part, happens once). A server that already ran when the session began, unmarked
(one a developer started, or one an older version of the suite left running), is left
running: stop such a leftover with local.stack.stop_postgres / stop_redis on its
directory.
"""

from __future__ import annotations

from collections.abc import Generator

import pytest

from local import stack
from local.stack_lease import Lease, Server, postgres, redis
from reliability import stack as reliability_stack

TEST_POSTGRES_DIR = stack.LOCAL_DIR / "test-postgres"
TEST_REDIS_DIR = stack.LOCAL_DIR / "test-redis"

_LEASE = pytest.StashKey[Lease]()


def suite_servers() -> list[Server]:
    """Every embedded server the suite may start: its own and the reliability runs'."""
    return [
        postgres(TEST_POSTGRES_DIR),
        redis(TEST_REDIS_DIR),
        *reliability_stack.embedded_servers(),
    ]


def pytest_sessionstart(session: pytest.Session) -> None:
    if hasattr(session.config, "workerinput"):
        return  # an xdist worker: its controller holds the lease for it
    lease = Lease(suite_servers())
    lease.begin()
    session.config.stash[_LEASE] = lease


# Outermost (tryfirst): the servers are stopped after everything else of the session's
# end, the teardown of its fixtures (databases dropped, pools closed) included, and
# what was stopped is said below the summary.
@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> Generator[None, None, None]:
    try:
        return (yield)
    finally:
        _end_lease(session)


def _end_lease(session: pytest.Session) -> None:
    lease = session.config.stash.get(_LEASE, None)
    if lease is None:
        return
    del session.config.stash[_LEASE]
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    try:
        stopped = lease.end()
    except stack.StackError as exc:
        # A server left listening is what this plugin exists to prevent: say so, and
        # do not let the run pass.
        message = f"could not stop a server this session started: {exc}"
        if reporter is not None:
            reporter.write_line(message, red=True)
        else:
            print(message)
        if session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
        return
    for line in stopped:
        if reporter is not None:
            reporter.write_line(f"stopped {line}: this session started it")
