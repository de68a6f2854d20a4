"""The torture's judge, in the spirit of Jepsen's bank test: it reads PostgreSQL (and,
at the end, HubSpot) and the clients' history, and lists every violation it finds.

State invariants, read from one REPEATABLE READ snapshot, so they hold at any moment,
even while clients write (every change commits bookings, seats, credits and audit rows
together):
* no exam has more seat-holding bookings than its capacity;
* every exam's seat count equals its seat-holding bookings;
* no balance is negative;
* for every student, the balance change since the start equals the sum of the audited
  changes;
* no student holds two seat-holding bookings on one date for one mock type.

History checks (what clients were told must be what happened):
* every booking a client was told exists does, for that student, under that key;
* every replay of a create that was answered returned the original booking;
* no Idempotency-Key made more than one booking, and only keys some client sent with
  an answered-or-unanswered create made any;
* every cancel a client was told happened did; nothing was cancelled that no client
  asked to cancel;
* every capacity a client read was within capacity;
* every credit adjustment answered 2xx is in the audit log once, none refused is.

At the end (`final=True`) also the bank balance: every student's balances equal the
start, plus adjustments made (unanswered ones resolved by their reason in the audit
log), plus HubSpot purchases, minus credits spent by bookings, plus refunds; and,
after a final sync, `hubspot_violations` compares every HubSpot record with
PostgreSQL.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row

from lib.hubspot.mapping import CREDIT_KINDS, booking_properties, credit_values
from local.standins.hubspot import BOOKINGS, CONTACTS, MOCK_EXAMS, HubSpotStandIn
from reliability.history import History
from reliability.world import World

TOKEN_KIND = {
    "Situational Judgment Token": "sj_credits",
    "Clinical Skills Token": "cs_credits",
    "Mini-mock Token": "sjmini_credits",
    "Mock Discussion Token": "mock_discussion_token",
    "Shared Token": "shared_mock_credits",
}
HELD = ("Active", "Completed")
# Every check by name: those `check` runs (the last two only when asked for at the
# end), and those `hubspot_violations` runs.
CHECKS = (
    "capacity",
    "seats",
    "no_negative_balance",
    "audit_accounts_for_balance",
    "no_duplicate_booking",
    "acknowledged_booking_exists",
    "replay_returns_original",
    "one_booking_per_key",
    "acknowledged_cancel_happened",
    "no_unasked_cancel",
    "reads_within_capacity",
    "adjustments_audited",
    "bank_balance",
)
HUBSPOT_CHECKS = ("hubspot_bookings", "hubspot_associations", "hubspot_credits", "hubspot_seats")
# Violations listed per check before the rest are only counted.
SHOWN_PER_CHECK = 5


@dataclass
class Verdict:
    """Violations found, by check, and how many things each check looked at."""

    violations: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    examined: Counter[str] = field(default_factory=Counter)

    def flag(self, check: str, message: str) -> None:
        self.violations[check].append(message)

    def look(self, check: str, count: int = 1) -> None:
        self.examined[check] += count

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.violations.values())

    def describe(self) -> list[str]:
        lines = []
        for check, found in sorted(self.violations.items()):
            for message in found[:SHOWN_PER_CHECK]:
                lines.append(f"{check}: {message}")
            if len(found) > SHOWN_PER_CHECK:
                lines.append(f"{check}: ... and {len(found) - SHOWN_PER_CHECK} more")
        return lines


@dataclass(frozen=True)
class Snapshot:
    exams: list[dict[str, Any]]
    contacts: list[dict[str, Any]]
    bookings: list[dict[str, Any]]
    credit_audit: list[dict[str, Any]]


def snapshot(database_url: str) -> Snapshot:
    """Everything the checks read, from one consistent snapshot."""
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        with conn.transaction():
            # total_bookings as the live count: the seats are held in the exam's seat
            # shards (20251212000100); the column keeps the count of the last re-deal.
            exams = conn.execute(
                "select e.*, (hubspot_sync._seat_state(e)).booked as live_booked"
                " from hubspot_sync.hubspot_mock_exams e"
            ).fetchall()
            for exam in exams:
                exam["total_bookings"] = exam.pop("live_booked")
            contacts = conn.execute("select * from hubspot_sync.hubspot_contact_credits").fetchall()
            bookings = conn.execute("select * from hubspot_sync.hubspot_bookings").fetchall()
            audit = conn.execute(
                "select record_id, old_values, new_values, reason"
                " from hubspot_sync.supabase_audit_log"
                " where table_name = 'hubspot_contact_credits' and operation = 'UPDATE'"
            ).fetchall()
    return Snapshot(exams, contacts, bookings, audit)


def check(
    database_url: str,
    world: World,
    history: History,
    *,
    purchases: Mapping[str, Counter[str]] | None = None,
    final: bool = False,
) -> Verdict:
    """Every invariant above against the database now. `purchases` (contact UUID ->
    kind -> amount added in HubSpot) is needed for the final bank balance."""
    # What clients were told before the snapshot began must be in it; what they asked
    # for up to its end (in flight included) bounds what it may hold.
    told = history.frozen()
    state = snapshot(database_url)
    return judge(state, world, told, history, purchases=purchases, final=final)


def judge(
    state: Snapshot,
    world: World,
    told: History,
    asked: History,
    *,
    purchases: Mapping[str, Counter[str]] | None = None,
    final: bool = False,
) -> Verdict:
    """check() on a snapshot already read: `told` holds the operations answered before
    it was taken, `asked` every operation sent by the end of it."""
    verdict = Verdict()
    _state_invariants(state, world, verdict)
    _history_checks(state, told, asked, verdict)
    if final:
        _bank_balance(state, world, asked, purchases or {}, verdict)
    return verdict


# ---------------------------------------------------------------- state


def _state_invariants(state: Snapshot, world: World, verdict: Verdict) -> None:
    _seat_invariants(state, verdict)
    _balance_invariants(state, world, verdict)
    slots: Counter[tuple[str, str, str, str]] = Counter(
        (b["student_id"], b["student_email"], str(b["exam_date"]), b["mock_type"])
        for b in state.bookings
        if b["is_active"] in HELD
    )
    verdict.look("no_duplicate_booking", len(slots))
    for slot, count in slots.items():
        if count > 1:
            verdict.flag("no_duplicate_booking", f"{count} bookings for {slot}")


def _seat_invariants(state: Snapshot, verdict: Verdict) -> None:
    held: Counter[str] = Counter(
        b["associated_mock_exam"] for b in state.bookings if b["is_active"] in HELD
    )
    for exam in state.exams:
        verdict.look("capacity")
        verdict.look("seats")
        seats = held[exam["hubspot_id"]]
        if seats > exam["capacity"]:
            verdict.flag("capacity", f"exam {exam['hubspot_id']}: {seats} > {exam['capacity']}")
        if exam["total_bookings"] != seats:
            verdict.flag(
                "seats",
                f"exam {exam['hubspot_id']}: count {exam['total_bookings']}, held {seats}",
            )


def _audited_changes(state: Snapshot) -> dict[str, Counter[str]]:
    """contact UUID -> kind -> the sum of audited balance changes."""
    audited: dict[str, Counter[str]] = defaultdict(Counter)
    for row in state.credit_audit:
        new, old = row["new_values"] or {}, row["old_values"] or {}
        for kind in CREDIT_KINDS:
            if kind in new:
                audited[str(row["record_id"])][kind] += int(new[kind] or 0) - int(
                    old.get(kind) or 0
                )
    return audited


def _balance_invariants(state: Snapshot, world: World, verdict: Verdict) -> None:
    audited = _audited_changes(state)
    for contact in state.contacts:
        key = str(contact["id"])
        for kind in CREDIT_KINDS:
            verdict.look("no_negative_balance")
            if (contact[kind] or 0) < 0:
                verdict.flag(
                    "no_negative_balance", f"{contact['student_id']} {kind}={contact[kind]}"
                )
        if key not in world.initial_credits:
            continue
        verdict.look("audit_accounts_for_balance")
        for kind in CREDIT_KINDS:
            change = (contact[kind] or 0) - world.initial_credits[key][kind]
            if change != audited[key][kind]:
                verdict.flag(
                    "audit_accounts_for_balance",
                    f"{contact['student_id']} {kind}: changed {change:+},"
                    f" audited {audited[key][kind]:+}",
                )


# ---------------------------------------------------------------- history


def _history_checks(state: Snapshot, told: History, asked: History, verdict: Verdict) -> None:
    """`told`: operations answered before the snapshot; `asked`: every operation sent
    by the end of it, those still in flight included."""
    by_id = {str(b["id"]): b for b in state.bookings}
    _create_checks(state, by_id, told, asked, verdict)
    _replay_checks(told, verdict)
    _cancel_checks(by_id, told, asked, verdict)
    for op in told.ops("read.capacity"):
        if op.outcome == "ok":
            verdict.look("reads_within_capacity")
            if op.data.get("total_bookings", 0) > op.data.get("capacity", 0):
                verdict.flag("reads_within_capacity", f"{op.data}")
    _adjustment_checks(state, told, asked, verdict)


def _create_checks(
    state: Snapshot,
    by_id: dict[str, dict[str, Any]],
    told: History,
    asked_history: History,
    verdict: Verdict,
) -> None:
    by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for booking in state.bookings:
        if booking["idempotency_key"]:
            by_key[booking["idempotency_key"]].append(booking)
    asked: Counter[str] = Counter()  # creates per key that may have happened
    for op in asked_history.ops("book", "replay"):
        if op.outcome != "fail":
            asked[op.args["key"]] += 1
    for op in told.ops("book", "replay"):
        key = op.args["key"]
        if op.outcome != "ok":
            continue
        verdict.look("acknowledged_booking_exists")
        row = by_id.get(str(op.data.get("id")))
        student = op.args["student"]
        if row is None:
            verdict.flag("acknowledged_booking_exists", f"{op.data.get('id')} (key {key}) missing")
        elif (row["student_id"], row["idempotency_key"]) != (student.student_id, key):
            verdict.flag("acknowledged_booking_exists", f"{row['id']} is not {key}'s")
    for key, rows in by_key.items():
        verdict.look("one_booking_per_key")
        if len(rows) > 1:
            verdict.flag("one_booking_per_key", f"key {key} made {len(rows)} bookings")
        if asked[key] == 0:
            verdict.flag("one_booking_per_key", f"key {key} booked though every create failed")


def _replay_checks(history: History, verdict: Verdict) -> None:
    for op in history.ops("replay"):
        original = op.args["original"]
        if original.outcome != "ok" or op.outcome != "ok":
            continue
        verdict.look("replay_returns_original")
        if op.data.get("id") != original.data.get("id") or op.status != 200:
            verdict.flag(
                "replay_returns_original",
                f"key {op.args['key']}: first {original.status} {original.data.get('id')},"
                f" replay {op.status} {op.data.get('id')}",
            )


def _cancel_checks(
    by_id: dict[str, dict[str, Any]], told: History, asked_history: History, verdict: Verdict
) -> None:
    asked = {
        op.args["booking"]
        for op in asked_history.ops("cancel", "admin_cancel")
        if op.outcome != "fail"
    }
    for op in told.ops("cancel", "admin_cancel"):
        if op.outcome == "ok":
            verdict.look("acknowledged_cancel_happened")
            row = by_id.get(op.args["booking"])
            if row is None or row["is_active"] != "Cancelled":
                verdict.flag("acknowledged_cancel_happened", f"{op.args['booking']}")
    for booking_id, row in by_id.items():
        if row["is_active"] == "Cancelled":
            verdict.look("no_unasked_cancel")
            if booking_id not in asked:
                verdict.flag("no_unasked_cancel", f"{booking_id} cancelled, never asked")


def _adjustment_checks(state: Snapshot, told: History, asked: History, verdict: Verdict) -> None:
    reasons = Counter(row["reason"] for row in state.credit_audit if row["reason"])
    for op in told.ops("adjust"):
        seen = reasons[op.args["reason"]]
        verdict.look("adjustments_audited")
        if op.outcome == "ok" and seen != 1:
            verdict.flag("adjustments_audited", f"{op.args['reason']}: answered 2xx, {seen} rows")
        elif op.outcome == "fail" and seen != 0:
            verdict.flag("adjustments_audited", f"{op.args['reason']}: refused, {seen} rows")
    for op in asked.ops("adjust"):
        if reasons[op.args["reason"]] > 1:
            verdict.flag("adjustments_audited", f"{op.args['reason']}: applied twice")


# ---------------------------------------------------------------- bank balance


def _bank_balance(
    state: Snapshot,
    world: World,
    history: History,
    purchases: Mapping[str, Counter[str]],
    verdict: Verdict,
) -> None:
    applied_reasons = {row["reason"] for row in state.credit_audit if row["reason"]}
    expected = {cid: Counter(balances) for cid, balances in world.initial_credits.items()}
    for op in history.ops("adjust"):
        if op.outcome == "ok" or (op.outcome == "info" and op.args["reason"] in applied_reasons):
            expected[op.args["student"].id].update(op.args["deltas"])
    for contact_id, bought in purchases.items():
        expected[contact_id].update(bought)
    owner = {(s.student_id, s.email): s.id for s in world.students}
    for booking in state.bookings:
        owner_id = owner.get((booking["student_id"], booking["student_email"]))
        kind = TOKEN_KIND.get(booking["token_used"] or "")
        if owner_id is None or kind is None:
            continue
        expected[owner_id][kind] -= 1
        if booking["token_refunded"] == "true":
            expected[owner_id][kind] += 1
    for contact in state.contacts:
        key = str(contact["id"])
        if key not in expected:
            continue
        verdict.look("bank_balance")
        actual = {kind: contact[kind] or 0 for kind in CREDIT_KINDS}
        wanted = {kind: expected[key][kind] for kind in CREDIT_KINDS}
        if actual != wanted:
            diff = {k: actual[k] - wanted[k] for k in CREDIT_KINDS if actual[k] != wanted[k]}
            verdict.flag("bank_balance", f"{contact['student_id']}: off by {diff}")


# ---------------------------------------------------------------- HubSpot


def hubspot_violations(state: Snapshot, standin: HubSpotStandIn) -> Verdict:
    """After a final sync: every booking, contact balance and seat count in HubSpot
    equals PostgreSQL's, nothing is duplicated, every association is right."""
    verdict = Verdict()
    records = standin.objects(BOOKINGS)
    codes = Counter(r["properties"].get("booking_id") for r in records)
    verdict.look("hubspot_bookings", len(state.bookings))
    mine = Counter(b["booking_id"] for b in state.bookings)
    if codes != mine:
        extra = codes - mine
        missing = mine - codes
        verdict.flag(
            "hubspot_bookings",
            f"HubSpot has {sum(extra.values())} extra, lacks {sum(missing.values())}",
        )
    in_hubspot = {r["id"]: r for r in records}
    contact_ids = {(c["student_id"], c["email"]): c["hubspot_id"] for c in state.contacts}
    for booking in state.bookings:
        record = in_hubspot.get(booking["hubspot_id"] or "")
        if record is None:
            verdict.flag("hubspot_bookings", f"{booking['booking_id']} not in HubSpot")
            continue
        expected = booking_properties({**booking, "email": booking["student_email"]})
        shown = {k: record["properties"].get(k, "") for k in expected}
        if shown != expected:
            wrong = sorted(k for k in expected if shown[k] != expected[k])
            verdict.flag("hubspot_bookings", f"{booking['booking_id']}: {wrong} differ")
        links = {
            CONTACTS: contact_ids.get((booking["student_id"], booking["student_email"])),
            MOCK_EXAMS: booking["associated_mock_exam"],
        }
        for to_type, want in links.items():
            linked = {a.to_id for a in standin.associations(BOOKINGS, to_type, record["id"])}
            if linked != {want}:
                verdict.flag("hubspot_associations", f"{booking['booking_id']} -> {to_type}")
        verdict.look("hubspot_associations")
    contacts = {r["id"]: r for r in standin.objects(CONTACTS)}
    for contact in state.contacts:
        verdict.look("hubspot_credits")
        record = contacts.get(contact["hubspot_id"] or "")
        if record is None:
            verdict.flag("hubspot_credits", f"{contact['student_id']} not in HubSpot")
            continue
        values = credit_values(record["properties"])
        ours = [contact[kind] or 0 for kind in CREDIT_KINDS]
        if values != ours:
            verdict.flag("hubspot_credits", f"{contact['student_id']}: {values} != {ours}")
    exams = {r["id"]: r for r in standin.objects(MOCK_EXAMS)}
    held = Counter(b["associated_mock_exam"] for b in state.bookings if b["is_active"] in HELD)
    for exam in state.exams:
        verdict.look("hubspot_seats")
        shown_total = exams.get(exam["hubspot_id"], {}).get("properties", {}).get("total_bookings")
        if shown_total != str(held[exam["hubspot_id"]]):
            verdict.flag("hubspot_seats", f"exam {exam['hubspot_id']}: HubSpot {shown_total}")
    return verdict
