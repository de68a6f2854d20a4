"""GET /api/mock-exams/[id]/capacity: live seat count of one session."""

from lib import limits
from lib.errors import AppError
from lib.exams import capacity
from lib.http import Request, function

_MAX_ID = 64


def get(request: Request) -> object:
    exam_id = request.segment(-2)  # /api/mock-exams/<id>/capacity
    if len(exam_id) > _MAX_ID or not exam_id.replace("-", "").isalnum():
        raise AppError("VALIDATION_ERROR", "id must be an exam UUID or HubSpot id", "id")
    return capacity(exam_id)


app = function("mock-exams.capacity", GET=get, rate_limit=limits.CAPACITY)
