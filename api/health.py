"""GET /api/health: can this function reach PostgreSQL and Redis."""

from lib.health import check
from lib.http import Request, Response, function


def get(request: Request) -> Response:
    report = check()
    return Response(report, status=503 if report["status"] == "down" else 200)


app = function("health", GET=get)
