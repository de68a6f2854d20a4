"""POST /api/admin/students/[id]/credits: adjust a student's credits by signed deltas
per credit kind, with a reason; all or nothing, never below zero, audited. An
Idempotency-Key header makes a retried request (a lost answer) apply once."""

from urllib.parse import unquote

from lib import admin
from lib.admin_auth import Admin
from lib.admin_http import admin_function
from lib.admin_models import CreditAdjustment
from lib.http import Request


def post(request: Request, who: Admin) -> object:
    contact_id = unquote(request.segment(-2))  # /api/admin/students/<id>/credits
    return admin.adjust_credits(
        contact_id,
        request.model(CreditAdjustment),
        who,
        idempotency_key=request.header("Idempotency-Key"),
    )


app = admin_function("admin.students.credits", POST=post)
