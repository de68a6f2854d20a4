"""The HubSpot stand-in as `./run dev` runs it: on a fixed local port, holding what the
real portal would hold next to the demo database, so that both a first login and a
sync can be tried by hand.

* Students who exist only in HubSpot, for a first login (PostgreSQL does not know
  them, HubSpot does):
      HSDEMO1 / hsdemo1@example.com  ...  HSDEMO5 / hsdemo5@example.com
* A mirror of the demo database, under the same HubSpot ids: every exam, every
  contact that has a HubSpot id (with the balances the sync last agreed on with
  HubSpot, so the bookings made since are the sync's to push), and every booking that
  has one, with its associations. What PostgreSQL holds and HubSpot does not (new
  bookings, contacts created here) is the sync's real work: `./run sync`.

The stand-in lives only while `./run dev` runs; its token is made up per run and
handed to the API server through the environment, like a real private-app token.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from lib.hubspot.mapping import booking_properties, epoch_ms
from local.standins.hubspot import BOOKINGS, CONTACTS, MOCK_EXAMS, HubSpotStandIn, serve

HOST = "127.0.0.1"
# Below the ephemeral port range, apart from the other local servers (see stack.py).
# `./run dev --hubspot-port` chooses another (a second checkout's run beside this one).
DEFAULT_PORT = 18090
HUBSPOT_ONLY_STUDENTS = 5
# HubSpot's association budget (Professional/Enterprise): its own, beside the 190/10 s.
ASSOCIATIONS_PER_10S = 150
CREDIT_KINDS = (
    "sj_credits",
    "cs_credits",
    "sjmini_credits",
    "mock_discussion_token",
    "shared_mock_credits",
)


def start(
    port: int = DEFAULT_PORT, database_url: str | None = None, *, search_per_s: int = 5
) -> HubSpotStandIn:
    """The stand-in on `port`, with the HubSpot-only students, and mirroring the
    database at `database_url` when given. `search_per_s`: HubSpot's search budget
    (5 a second), raised by the fuzzer, which logs in far faster than students."""
    standin = serve(
        f"local-{secrets.token_hex(16)}",
        host=HOST,
        port=port,
        associations_per_10s=ASSOCIATIONS_PER_10S,
        search_per_s=search_per_s,
    )
    for n in range(1, HUBSPOT_ONLY_STUDENTS + 1):
        standin.put(
            CONTACTS,
            {
                "student_id": f"HSDEMO{n}",
                "email": f"hsdemo{n}@example.com",
                "firstname": "HubSpot",
                "lastname": f"Only {n}",
                "sj_credits": "2",
                "cs_credits": "2",
                "sjmini_credits": "1",
                "mock_discussion_token": "1",
                "shared_mock_credits": "1",
            },
        )
    if database_url:
        mirror(standin, database_url)
    return standin


def mirror(standin: HubSpotStandIn, database_url: str) -> dict[str, int]:
    """Copy into the stand-in what HubSpot holds for this database: exams, contacts
    and bookings that carry a HubSpot id, under that id. Returns the counts."""
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        # total_bookings as the live count, from the exam's seat shards (20251212000100).
        exams = conn.execute(
            "select e.*, (hubspot_sync._seat_state(e)).booked as live_booked"
            " from hubspot_sync.hubspot_mock_exams e"
        ).fetchall()
        for exam in exams:
            exam["total_bookings"] = exam.pop("live_booked")
        contacts = conn.execute(
            "select c.*, s.base from hubspot_sync.hubspot_contact_credits c"
            " left join hubspot_sync.sync_contact_credits s on s.contact_id = c.id"
            " where c.hubspot_id is not null"
        ).fetchall()
        bookings = conn.execute(
            "select b.*, c.hubspot_id as contact_hubspot_id from hubspot_sync.hubspot_bookings b"
            " left join hubspot_sync.hubspot_contact_credits c"
            " on c.student_id = b.student_id and c.email = b.student_email"
            " where b.hubspot_id is not null"
        ).fetchall()
    for exam in exams:
        standin.put(MOCK_EXAMS, _exam_properties(exam), id=exam["hubspot_id"])
    for contact in contacts:
        # What HubSpot last agreed on (the merge base), not today's balances: the
        # bookings made since are changes the sync still has to bring over.
        base: list[int] = contact["base"] or [contact[k] or 0 for k in CREDIT_KINDS]
        standin.put(
            CONTACTS,
            {
                "email": contact["email"],
                "student_id": contact["student_id"],
                "firstname": contact["firstname"] or "",
                "lastname": contact["lastname"] or "",
                "ndecc_exam_date": contact["ndecc_exam_date"] or "",
                **{kind: str(value) for kind, value in zip(CREDIT_KINDS, base, strict=True)},
            },
            id=contact["hubspot_id"],
        )
    for booking in bookings:
        row: dict[str, Any] = {**booking, "email": booking["student_email"]}
        standin.put(
            BOOKINGS,
            {**booking_properties(row), "booking_id": booking["booking_id"]},
            id=booking["hubspot_id"],
        )
        if booking["contact_hubspot_id"]:
            standin.associate(
                BOOKINGS, booking["hubspot_id"], CONTACTS, booking["contact_hubspot_id"]
            )
        if booking["associated_mock_exam"]:
            standin.associate(
                BOOKINGS, booking["hubspot_id"], MOCK_EXAMS, booking["associated_mock_exam"]
            )
    return {"mock_exams": len(exams), "contacts": len(contacts), "bookings": len(bookings)}


def _exam_properties(exam: dict[str, Any]) -> dict[str, str]:
    def ms(value: Any) -> str:
        if isinstance(value, str):  # start/end times are text, in the old app's ISO form
            value = datetime.fromisoformat(value)
        return str(epoch_ms(value)) if value is not None else ""

    return {
        "mock_exam_name": exam["mock_exam_name"] or "",
        "mock_type": exam["mock_type"] or "",
        "mock_set": exam["mock_set"] or "",
        "exam_date": exam["exam_date"].isoformat() if exam["exam_date"] else "",
        "start_time": ms(exam["start_time"]),
        "end_time": ms(exam["end_time"]),
        "location": exam["location"] or "",
        "capacity": str(exam["capacity"]) if exam["capacity"] is not None else "",
        "total_bookings": str(exam["total_bookings"] or 0),
        "is_active": exam["is_active"] or "",
        "scheduled_activation_datetime": ms(exam["scheduled_activation_datetime"]),
    }
