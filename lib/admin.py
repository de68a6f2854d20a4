"""What an admin does to students and bookings: look them up, adjust credits, cancel
on a student's behalf. Each operation is one call to a SQL function that checks and
writes atomically and records who and why in the audit log (performed_by is
`admin:<email or user id>`, reason is the admin's); nothing here calls HubSpot, the
sync carries every change there on its next run.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from lib import db, exams
from lib.admin_auth import Admin
from lib.admin_http import audit
from lib.admin_models import AdminCancellation, CreditAdjustment
from lib.errors import AppError, rejection

logger = logging.getLogger(__name__)

_MAX_REF = 200


def _answer(result: dict[str, Any]) -> dict[str, Any]:
    if not result["ok"]:
        raise rejection(result)
    return result


def _contact_id(value: str) -> str:
    if not exams.is_uuid(value):
        # A student_id or email in the path: say where to look instead of 404.
        raise AppError("VALIDATION_ERROR", "id must be the student's UUID (search first)", "id")
    return value.lower()


def _booking_ref(value: str) -> str:
    ref = value.strip()
    if not ref or len(ref) > _MAX_REF:
        raise AppError("VALIDATION_ERROR", f"id must be 1-{_MAX_REF} characters", "id")
    return ref


def search(query: str) -> dict[str, Any]:
    """Students by student_id or email, bookings by UUID, HubSpot id or code."""
    result = _answer(db.rpc("admin_search", {"p_query": query}))
    return {"students": result["students"], "bookings": result["bookings"]}


def student(contact_id: str) -> dict[str, Any]:
    """One student with their bookings and credit history (the audit log)."""
    result = _answer(db.rpc("student_detail", {"p_contact_id": _contact_id(contact_id)}))
    return {
        "contact": result["contact"],
        "bookings": result["bookings"],
        "credit_history": result["credit_history"],
    }


def adjust_credits(
    contact_id: str, change: CreditAdjustment, admin: Admin, idempotency_key: str | None = None
) -> dict[str, Any]:
    """Apply signed deltas all or nothing (CREDITS_WOULD_BE_NEGATIVE otherwise). The
    student sees the new balances at once (login reads PostgreSQL); HubSpot gets them
    through the sync's credit merge, which adds PostgreSQL's change to HubSpot's own.

    Applied once per `idempotency_key` (the request's Idempotency-Key header): a retry
    answers the first adjustment again. Without one, a key is made for this request,
    so lib/db.py's retry after a dropped connection is still safe."""
    key = idempotency_key if idempotency_key is not None else f"auto-{uuid.uuid4()}"
    result = _answer(
        db.rpc(
            "adjust_credits",
            {
                "p_contact_id": _contact_id(contact_id),
                "p_deltas": dict(change.deltas),
                "p_reason": change.reason,
                "p_admin": admin.actor,
                "p_idempotency_key": key,
            },
        )
    )
    if not result.get("replayed"):
        audit(
            "credits adjusted", admin, contact_id=result["contact"]["id"], deltas=result["applied"]
        )
    return {"contact": result["contact"], "applied": result["applied"]}


def booking(ref: str) -> dict[str, Any]:
    """One booking of any student, with its owner, its HubSpot state and its history."""
    result = _answer(db.rpc("admin_booking", {"p_ref": _booking_ref(ref)}))
    return {
        "booking": result["booking"],
        "contact": result["contact"],
        "sync": result["sync"],
        "history": result["history"],
    }


def cancel_booking(ref: str, request: AdminCancellation, admin: Admin) -> dict[str, Any]:
    """Cancel on the student's behalf, with or without giving the credit back; even
    after the exam started (students cannot). Cancelling twice changes nothing."""
    result = _answer(
        db.rpc(
            "cancel_booking",
            {
                "p_booking_ref": _booking_ref(ref),
                "p_admin": admin.actor,
                "p_refund": request.refund,
                "p_reason": request.reason,
            },
        )
    )
    if result.get("seats"):
        exams.remember_seats([result["seats"]])
    audit(
        "booking cancelled",
        admin,
        booking_id=result["booking"]["id"],
        refund=request.refund,
        credits_restored=result["credits_restored"],
        already_cancelled=result["already_cancelled"],
    )
    return {
        "booking": result["booking"],
        "credits_restored": result["credits_restored"],
        "already_cancelled": result["already_cancelled"],
        "credits": result["credits"],
    }
