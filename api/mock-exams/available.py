"""GET /api/mock-exams/available?mock_type=&include_capacity=: upcoming sessions."""

from lib.exams import available
from lib.http import RateLimit, Request, function
from lib.models import AvailableQuery


def get(request: Request) -> object:
    query = request.query_model(AvailableQuery)
    return available(query.mock_type, include_full=query.include_capacity)


# Pages poll the list while a session opens: 300 a minute per client is one request
# every 200 ms, far above a person and well below a flood.
app = function("mock-exams.available", GET=get, rate_limit=RateLimit("available", 300, 60))
