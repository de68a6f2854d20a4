"""POST /api/user/login: {student_id, email} -> profile and all five credits."""

from lib.http import RateLimit, Request, function
from lib.models import Student
from lib.students import login


def post(request: Request) -> object:
    return login(request.model(Student))


# 60 a minute per client: a login is one per visit; this only stops guessing scripts.
app = function("user.login", POST=post, rate_limit=RateLimit("login", 60, 60))
