"""GET /api/admin/me: who this access token belongs to (the dashboard's sign-in check)."""

from lib.admin_auth import Admin
from lib.admin_http import admin_function
from lib.http import Request


def get(request: Request, admin: Admin) -> object:
    del request
    return {"user_id": admin.user_id, "email": admin.email, "role": admin.role}


app = admin_function("admin.me", GET=get)
