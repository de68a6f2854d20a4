"""The torture's HubSpot side: a thread that, every few seconds, makes purchases in
HubSpot (credits added there, as a student buying a pack does) and then runs the
sync the ways production does: the cron endpoint, the admin's "run now", or, when a
fault asks for it, a sync process killed with SIGKILL mid-run.

Runs never overlap (the lease would refuse the second anyway, and the driver is one
thread); `lock` is held while one is in flight, so a fault that restarts PostgreSQL
can wait for the sync to finish first (a run cut by a restart keeps its lease for
production's 360 s, which would stall the torture, not break it).

Purchases are made only while no HubSpot request can still land late (no timeout or
lost-response fault for a while, no killed run's request in flight): a HubSpot edit
racing a sync push it does not know about can be overwritten by that push. HubSpot's
API offers no compare-and-set on properties; README "HubSpot setup" tells admins to
leave credit edits to the minutes between runs. The torture checks what the system
promises, not that.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import requests

from lib.hubspot.mapping import CREDIT_KINDS, credit_values
from local.standins.hubspot import CONTACTS, HubSpotStandIn
from reliability.history import History, Op
from reliability.world import World

ROOT = Path(__file__).resolve().parent.parent
SYNC_TIMEOUT_S = 120.0
CHILD_LEASE_TTL_S = 8
CHILD_TIMEOUT_S = 60.0


class SyncDriver(threading.Thread):
    def __init__(
        self,
        *,
        base: str,
        cron_secret: str,
        admin_token: str,
        standin: HubSpotStandIn,
        child_env: dict[str, str],
        world: World,
        history: History,
        stop: threading.Event,
        seed: int,
        interval_s: float,
    ) -> None:
        super().__init__(name="torture-sync", daemon=True)
        self.base = base
        self.cron_secret = cron_secret
        self.admin_token = admin_token
        self.standin = standin
        self.child_env = child_env
        self.world = world
        self.history = history
        self.stop = stop
        self.rng = random.Random(f"{seed}:sync")
        self.interval_s = interval_s
        self.lock = threading.Lock()
        self.purchases: dict[str, Counter[str]] = defaultdict(Counter)
        self.kills_wanted = 0
        self.kills = Counter[str]()  # "killed" / "finished first"
        self._quiet_after = 0.0
        self._session = requests.Session()

    def disturbed_until(self, instant: float) -> None:
        """No purchase before `instant` (monotonic): a late HubSpot write may land."""
        self._quiet_after = max(self._quiet_after, instant)

    def pause_purchases(self) -> None:
        self._quiet_after = float("inf")

    def resume_purchases(self, *, after_s: float) -> None:
        self._quiet_after = time.monotonic() + after_s

    def run(self) -> None:
        try:
            while not self.stop.wait(self.interval_s):
                with self.lock:
                    if self.kills_wanted > 0:
                        self.kills_wanted -= 1
                        self.killed_run()
                        continue
                    if time.monotonic() >= self._quiet_after:
                        self.purchase()
                    self.sync(via=self.rng.choice(("cron", "admin")))
        finally:
            self._session.close()

    def purchase(self) -> None:
        known = [s for s in self.world.students if s.hubspot_id]
        records = {r["id"]: r for r in self.standin.objects(CONTACTS)}
        for student in self.rng.sample(known, min(2, len(known))):
            kind = self.rng.choice(CREDIT_KINDS)
            amount = self.rng.randint(1, 2)
            record = records.get(str(student.hubspot_id))
            if record is None:
                continue
            values = credit_values(record["properties"]) or [0] * len(CREDIT_KINDS)
            current = dict(zip(CREDIT_KINDS, values, strict=True))[kind]
            self.standin.put(CONTACTS, {kind: str(current + amount)}, id=student.hubspot_id)
            self.purchases[student.id][kind] += amount

    def sync(self, *, via: str, mode: str = "delta") -> Op:
        """One run through an endpoint; the answer is in the history."""
        if via == "cron":
            method, path, body = "GET", "/api/cron/sync", None
            headers = {"Authorization": f"Bearer {self.cron_secret}"}
        else:
            method, path, body = "POST", "/api/admin/sync/runs", {"mode": mode}
            headers = {"Authorization": f"Bearer {self.admin_token}", "X-Real-IP": "10.79.0.1"}
        op = Op(f"sync.{via}", {"mode": mode})
        self.history.add(op)
        try:
            response = self._session.request(
                method, self.base + path, json=body, headers=headers, timeout=SYNC_TIMEOUT_S
            )
        except requests.RequestException as error:
            op.error = type(error).__name__
        else:
            payload = response.json() if response.content else {}
            inner = payload.get("data") if payload.get("success") else payload.get("error")
            op.data = inner if isinstance(inner, dict) else {}
            op.status = response.status_code
        op.ended = time.monotonic()
        return op

    def killed_run(self) -> None:
        """A sync process, SIGKILLed once HubSpot has seen a random number of its
        requests (by progress, not by clock, so kills land in every phase)."""
        op = Op("sync.killed", {})
        self.history.add(op)
        sent_before = len(self.standin.requests())
        child = subprocess.Popen(
            [sys.executable, "-m", "reliability.sync_child", str(CHILD_LEASE_TTL_S)],
            cwd=ROOT,
            env={**self.child_env, "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        kill_after = self.rng.randint(1, 25)
        deadline = time.monotonic() + CHILD_TIMEOUT_S
        while child.poll() is None and time.monotonic() < deadline:
            if len(self.standin.requests()) - sent_before >= kill_after:
                break
            time.sleep(0.002)
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            self.kills["killed"] += 1
            op.data = {"result": "killed", "after_requests": kill_after}
        else:
            self.kills["finished first"] += 1
            op.data = {"result": "finished first"}
        child.wait(timeout=10)
        output = child.stdout.read().decode(errors="replace") if child.stdout else ""
        if child.stdout:
            child.stdout.close()
        # Killed: no answer (None). Otherwise the CLI's convention: 0 is a clean run.
        if child.returncode >= 0:
            op.status = 200 if child.returncode == 0 else 500
        op.error = output.strip()[-300:] or None
        op.ended = time.monotonic()
        # Requests the killed run had sent may still land; no purchase until they have.
        self.disturbed_until(time.monotonic() + 2.0)

    def close(self) -> None:
        self._session.close()
