"""The load generator: one asyncio event loop, aiohttp, in one process.

It plays students: each sends the requests the booking page sends, with its own
client address in `X-Real-IP` (the server runs with LOCAL_TRUST_FORWARDED=1, as
Vercel's edge would set it), so per-client rate limits see distinct students. Every
request becomes one `Sample` with its endpoint, start, latency, HTTP status and the
envelope's error code; a request that got no answer has status 0.

Three shapes of load:
* `rush`: open loop. Students arrive at times drawn in advance (uniform over the
  window, a Poisson process given the count), whether or not earlier ones have been
  answered, and each walks login -> available -> validate-credits -> create, some
  then cancel and book again. Arrival lag (how late the loop started a student) is
  recorded: a generator that falls behind would hide the server's slowness.
* `closed_loop`: N workers, each booking as soon as its previous booking is answered
  (what wrk does), for the throughput ceiling.
* `burst`: every request sent at once (the stampede).

Latency is measured around the whole exchange (connect if needed, send, read the
body), with time.perf_counter.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp

from bench.load_data import MOCK_TYPE, Population

# A request that takes this long is failed by the client and counted as unanswered;
# book() gives up on its locks after 3 s and the pool after 5 s, so a booking past 30 s
# is a hung server, not a slow one.
REQUEST_TIMEOUT_S = 30.0
# gunicorn closes idle keep-alive connections after 2 s. A client that reuses one
# just as the server closes it gets a disconnect that is nobody's failure; dropping
# idle connections after 1 s avoids that race.
KEEPALIVE_S = 1.0
# How often the loop-lag probe wakes up: fine enough to see a stall of a few ms.
LAG_PROBE_S = 0.01
ENDPOINTS = ("login", "available", "validate-credits", "create", "cancel")


@dataclass(frozen=True)
class Sample:
    endpoint: str
    started_s: float  # since the run's start
    latency_ms: float
    status: int  # HTTP status; 0 when no answer came
    code: str | None  # the error envelope's code, or the exception's name when unanswered

    @property
    def ended_s(self) -> float:
        return self.started_s + self.latency_ms / 1000

    @property
    def answered(self) -> bool:
        return self.status != 0


@dataclass
class Run:
    """What one load shape recorded."""

    samples: list[Sample] = field(default_factory=list)
    answered_bookings: set[str] = field(default_factory=set)  # ids the client was told
    arrival_lag_ms: list[float] = field(default_factory=list)  # rush only
    loop_lag_ms: list[float] = field(default_factory=list)  # probe overshoots
    duration_s: float = 0.0  # first request sent to last answer received
    client_cpu_s: float = 0.0  # CPU this process used while generating


def client_address(n: int) -> str:
    """A distinct loopback-range address per student, as Vercel's edge would report
    distinct clients (only ever a header value; nothing is sent there)."""
    return f"127.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


class Client:
    """One aiohttp session to `base_url` recording every exchange into `run`."""

    def __init__(self, base_url: str, connections: int, run: Run) -> None:
        self._base = base_url.rstrip("/")
        self._connections = connections
        self.run = run
        self._session: aiohttp.ClientSession | None = None
        self._t0 = time.perf_counter()

    async def __aenter__(self) -> Client:
        connector = aiohttp.TCPConnector(
            limit=self._connections, keepalive_timeout=KEEPALIVE_S, force_close=False
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
            # No cookies are used by the API; skipping the jar saves work per request.
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._session is not None:
            await self._session.close()

    def start_clock(self) -> None:
        self._t0 = time.perf_counter()

    def now_s(self) -> float:
        return time.perf_counter() - self._t0

    async def call(
        self,
        endpoint: str,
        method: str,
        path: str,
        student: int,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[Sample, Any]:
        """One exchange; (its sample, the envelope's data or None)."""
        assert self._session is not None, "use the client as an async context manager"
        sent = {"X-Real-IP": client_address(student), **(headers or {})}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        started = time.perf_counter()
        status, code, payload = 0, None, None
        try:
            async with self._session.request(
                method, self._base + path, data=data, headers=sent
            ) as response:
                raw = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            code = type(exc).__name__
        else:
            try:
                envelope = json.loads(raw)
            except ValueError:
                code = "NOT_JSON"
            else:
                if isinstance(envelope, dict) and envelope.get("success"):
                    payload = envelope.get("data")
                elif isinstance(envelope, dict):
                    code = str((envelope.get("error") or {}).get("code"))
        ended = time.perf_counter()
        sample = Sample(
            endpoint=endpoint,
            started_s=started - self._t0,
            latency_ms=(ended - started) * 1000,
            status=status,
            code=code,
        )
        self.run.samples.append(sample)
        return sample, payload

    async def create(
        self, population: Population, n: int, exam_id: str
    ) -> tuple[Sample, str | None]:
        """POST /api/bookings/create for student n with a fresh Idempotency-Key; the
        booking id when one was answered (201, or 200 for a replay)."""
        sample, data = await self.call(
            "create",
            "POST",
            "/api/bookings/create",
            n,
            {
                "student_id": population.student_id(n),
                "email": population.email(n),
                "mock_exam_id": exam_id,
                "dominant_hand": "right",
            },
            {"Idempotency-Key": f"load-{uuid.uuid4().hex}"},
        )
        booking = data.get("id") if isinstance(data, dict) else None
        if isinstance(booking, str):
            self.run.answered_bookings.add(booking)
            return sample, booking
        return sample, None


# ---------------------------------------------------------------- shapes of load


def _student_body(population: Population, n: int) -> dict[str, Any]:
    return {"student_id": population.student_id(n), "email": population.email(n)}


async def visit(
    client: Client, population: Population, n: int, rng: random.Random, cancel: bool
) -> None:
    """One student's walk through the booking page. Stops at the first failure."""
    student = _student_body(population, n)
    login, _ = await client.call("login", "POST", "/api/user/login", n, student)
    if login.status != 200:
        return
    available, sessions = await client.call(
        "available", "GET", f"/api/mock-exams/available?mock_type={quote(MOCK_TYPE)}", n
    )
    open_ids = [
        str(s["id"])
        for s in (sessions if isinstance(sessions, list) else [])
        if int(s.get("available_slots", 0)) > 0
    ]
    if available.status != 200 or not open_ids:
        return
    check, _ = await client.call(
        "validate-credits",
        "POST",
        "/api/mock-exams/validate-credits",
        n,
        {**student, "mock_type": MOCK_TYPE},
    )
    if check.status != 200:
        return
    _, booking = await client.create(population, n, rng.choice(open_ids))
    if booking is None or not cancel:
        return
    cancelled, _ = await client.call(
        "cancel", "DELETE", f"/api/bookings/{booking}", n, {**student, "reason": "load test"}
    )
    if cancelled.status != 200:
        return
    # Changed their mind: another session (or the same one again).
    await client.create(population, n, rng.choice(open_ids))


async def _lag_probe(run: Run, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        before = loop.time()
        await asyncio.sleep(LAG_PROBE_S)
        run.loop_lag_ms.append(max(0.0, (loop.time() - before - LAG_PROBE_S) * 1000))


async def _measured(client: Client, body: Callable[[], Awaitable[None]]) -> None:
    """Run `body` with the loop-lag probe, recording duration and client CPU."""
    stop = asyncio.Event()
    probe = asyncio.create_task(_lag_probe(client.run, stop))
    cpu = time.process_time()
    client.start_clock()
    try:
        await body()
    finally:
        stop.set()
        await probe
    client.run.client_cpu_s = time.process_time() - cpu
    samples = client.run.samples
    if samples:
        client.run.duration_s = max(s.ended_s for s in samples) - min(s.started_s for s in samples)


async def rush(
    base_url: str,
    population: Population,
    arrival_s: float,
    cancel_fraction: float,
    seed: int,
    connections: int,
) -> Run:
    """Every student of `population` arrives once within `arrival_s` seconds."""
    rng = random.Random(seed)
    students = list(range(1, population.students + 1))
    offsets = sorted(rng.uniform(0, arrival_s) for _ in students)
    rng.shuffle(students)
    cancelling = set(rng.sample(students, round(cancel_fraction * len(students))))
    run = Run()
    async with Client(base_url, connections, run) as client:
        loop = asyncio.get_running_loop()

        async def arrive(offset: float, n: int, start: float) -> None:
            await asyncio.sleep(max(0.0, start + offset - loop.time()))
            run.arrival_lag_ms.append((loop.time() - start - offset) * 1000)
            await visit(client, population, n, random.Random(seed * 1_000_003 + n), n in cancelling)

        async def body() -> None:
            start = loop.time()
            await asyncio.gather(
                *(arrive(o, n, start) for o, n in zip(offsets, students, strict=True))
            )

        await _measured(client, body)
    return run


class StudentPool:
    """Hands out students 1..count once each; a booking per student."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.used = 0

    def take(self) -> int | None:
        if self.used >= self.count:
            return None
        self.used += 1
        return self.used


async def closed_loop(
    base_url: str,
    population: Population,
    students: StudentPool,
    exam_ids: Sequence[str],
    concurrency: int,
    seconds: float,
    seed: int,
) -> Run:
    """`concurrency` workers booking back to back for `seconds` (the caller keeps
    the samples of the window it measures). Each booking: a fresh student on an exam
    drawn from `exam_ids`."""
    rng = random.Random(seed)
    run = Run()
    async with Client(base_url, concurrency, run) as client:

        async def worker() -> None:
            while client.now_s() < seconds:
                n = students.take()
                if n is None:
                    return
                await client.create(population, n, rng.choice(exam_ids))

        async def body() -> None:
            await asyncio.gather(*(worker() for _ in range(concurrency)))

        await _measured(client, body)
    return run


async def burst(base_url: str, population: Population, exam_id: str, connections: int) -> Run:
    """Every student of `population` books `exam_id`, all sent at once."""
    run = Run()
    async with Client(base_url, connections, run) as client:

        async def body() -> None:
            await asyncio.gather(
                *(client.create(population, n, exam_id) for n in range(1, population.students + 1))
            )

        await _measured(client, body)
    return run


async def warm(
    base_url: str, population: Population, exam_id: str, concurrency: int, *, full_api: bool
) -> Run:
    """Every endpoint (only create on the bare endpoint) once per student 1..concurrency,
    all at once, so that each worker has imported its functions and opened its pools
    before anything is measured. The caller resets the data afterwards."""
    run = Run()
    async with Client(base_url, concurrency, run) as client:

        async def one(n: int) -> None:
            if full_api:
                student = _student_body(population, n)
                await client.call("login", "POST", "/api/user/login", n, student)
                await client.call(
                    "available",
                    "GET",
                    f"/api/mock-exams/available?mock_type={quote(MOCK_TYPE)}",
                    n,
                )
                await client.call(
                    "validate-credits",
                    "POST",
                    "/api/mock-exams/validate-credits",
                    n,
                    {**student, "mock_type": MOCK_TYPE},
                )
            await client.create(population, n, exam_id)

        async def body() -> None:
            await asyncio.gather(*(one(n) for n in range(1, concurrency + 1)))

        await _measured(client, body)
    return run
