"""POST /api/mock-exams/validate-credits: can this student pay for this exam type."""

from lib import limits
from lib.http import Request, function
from lib.models import CreditCheck
from lib.students import validate_credits


def post(request: Request) -> object:
    return validate_credits(request.model(CreditCheck), request.client_id)


app = function("mock-exams.validate-credits", POST=post, rate_limit=limits.VALIDATE)
