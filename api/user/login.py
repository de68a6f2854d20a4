"""POST /api/user/login: {student_id, email} -> profile and all five credits."""

from lib import limits
from lib.http import Request, function
from lib.models import Student
from lib.students import login


def post(request: Request) -> object:
    return login(request.model(Student), request.client_id)


app = function("user.login", POST=post, rate_limit=limits.LOGIN)
