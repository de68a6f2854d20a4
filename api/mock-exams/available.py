"""GET /api/mock-exams/available?mock_type=&include_capacity=: upcoming sessions."""

from lib import limits
from lib.exams import available
from lib.http import Request, function
from lib.models import AvailableQuery


def get(request: Request) -> object:
    query = request.query_model(AvailableQuery)
    return available(query.mock_type, include_full=query.include_capacity)


app = function("mock-exams.available", GET=get, rate_limit=limits.AVAILABLE)
