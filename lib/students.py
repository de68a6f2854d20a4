"""Student identity and credits: login and credit validation.

PostgreSQL answers first. A student it does not know may exist only in HubSpot
(enrolled before this system): one HubSpot search by student_id + email, then the
contact is stored in PostgreSQL and never asked for again. HubSpot trouble only ever
affects such first logins; a student already in PostgreSQL never waits on HubSpot.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from lib import db, log
from lib.errors import AppError, rejection
from lib.models import CreditCheck, Student

logger = logging.getLogger(__name__)
CREDIT_KINDS = (
    "sj_credits",
    "cs_credits",
    "sjmini_credits",
    "mock_discussion_token",
    "shared_mock_credits",
)


def _from_hubspot(student: Student, client_id: str) -> dict[str, Any] | None:
    """The contact found in HubSpot and now stored in PostgreSQL, or None."""
    from lib.hubspot.lookup import find_contact  # only first logins pay for this import

    found = find_contact(student.student_id, student.email, client_id)
    if found is None:
        return None
    props: dict[str, Any] = found.get("properties", {})

    def credit(name: str) -> int:
        try:
            return max(0, int(float(props.get(name) or 0)))
        except ValueError:
            return 0

    stored = db.rpc(
        "store_hubspot_contact",
        {
            "p_hubspot_id": str(found["id"]),
            "p_student_id": student.student_id,
            "p_email": student.email,
            "p_firstname": props.get("firstname"),
            "p_lastname": props.get("lastname"),
            "p_ndecc_exam_date": props.get("ndecc_exam_date"),
            **{f"p_{kind}": credit(kind) for kind in CREDIT_KINDS},
        },
    )
    if not stored["ok"]:
        log.event(logger, logging.WARNING, "hubspot contact not storable", code=stored["code"])
        return None
    contact: dict[str, Any] = stored["contact"]
    return contact


def _contact(student: Student, client_id: str) -> tuple[dict[str, Any], str]:
    """(contact, where it came from). STUDENT_NOT_FOUND when neither side knows it.
    `client_id`: who asks (lib/hubspot/lookup.py limits look-ups per client)."""
    result = db.rpc(
        "contact_credits", {"p_student_id": student.student_id, "p_email": student.email}
    )
    if result["ok"]:
        return result["contact"], "postgres"
    if result["code"] != "CONTACT_NOT_FOUND":
        raise rejection(result)
    contact = _from_hubspot(student, client_id)
    if contact is None:
        raise AppError("STUDENT_NOT_FOUND")
    return contact, "hubspot"


def profile(contact: dict[str, Any], source: str) -> dict[str, Any]:
    name = " ".join(p for p in (contact.get("firstname"), contact.get("lastname")) if p)
    return {
        "id": contact["id"],
        "contact_id": contact["id"],
        "hubspot_id": contact.get("hubspot_id"),
        "student_id": contact["student_id"],
        "email": contact["email"],
        "name": name or "Student",
        "firstname": contact.get("firstname"),
        "lastname": contact.get("lastname"),
        "ndecc_exam_date": contact.get("ndecc_exam_date"),
        "credits": contact["credits"],
        "_metadata": {"data_source": source, "timestamp": datetime.now(UTC).isoformat()},
    }


def login(student: Student, client_id: str) -> dict[str, Any]:
    contact, source = _contact(student, client_id)
    return profile(contact, source)


def validate_credits(check: CreditCheck, client_id: str) -> dict[str, Any]:
    params = {
        "p_student_id": check.student_id,
        "p_email": check.email,
        "p_mock_type": check.mock_type,
    }
    result = db.rpc("validate_credits", params)
    if not result["ok"] and result["code"] == "CONTACT_NOT_FOUND":
        _contact(check, client_id)  # a first login through this endpoint: fetch and store
        result = db.rpc("validate_credits", params)
    if not result["ok"]:
        raise rejection(result)
    contact = result["contact"]
    answer: dict[str, Any] = {
        "eligible": result["eligible"],
        "available_credits": result["available_credits"],
        "credit_breakdown": result["credit_breakdown"],
        "mock_type": check.mock_type,
        "contact_id": contact["id"],
        "student_name": " ".join(
            p for p in (contact.get("firstname"), contact.get("lastname")) if p
        )
        or "Student",
        "ndecc_exam_date": contact.get("ndecc_exam_date"),
        "credits": contact["credits"],
    }
    if not result["eligible"]:
        answer["error_message"] = (
            f"You have 0 credits available for {check.mock_type} exams."
            " At least 1 credit is required to book."
        )
    return answer
