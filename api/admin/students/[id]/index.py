"""GET /api/admin/students/[id]: one student (by UUID) with their bookings and credit
history (every audited change: who, when, why, before and after)."""

from urllib.parse import unquote

from lib import admin
from lib.admin_auth import Admin
from lib.admin_http import admin_function
from lib.http import Request


def get(request: Request, who: Admin) -> object:
    del who
    return admin.student(unquote(request.segment(-1)))  # /api/admin/students/<id>


app = admin_function("admin.students.item", GET=get)
