"""Per-client request limits of the public endpoints, in one place.

A client is the address Vercel's edge saw. During a rush a whole class can sit behind
one campus address, so each limit is sized for about 200 students behind one address
(each tab polls the list every 15 s and a session's seats every 10 s), with room for
retries. A script flooding an endpoint goes far beyond these within seconds and is
answered 429 with Retry-After; other clients are not affected. The budgets are shared
by every function instance through Redis (lib/redis_scripts.py), fixed windows of a
minute; without Redis there is no limit (the database stays the arbiter).
"""

from __future__ import annotations

from lib.http import RateLimit

WINDOW_S = 60

LOGIN = RateLimit("login", 300, WINDOW_S)
VALIDATE = RateLimit("validate", 600, WINDOW_S)
AVAILABLE = RateLimit("available", 1200, WINDOW_S)
CAPACITY = RateLimit("capacity", 2400, WINDOW_S)
CREATE = RateLimit("create", 300, WINDOW_S)
BOOKING = RateLimit("booking", 600, WINDOW_S)
LIST = RateLimit("list", 600, WINDOW_S)
