"""Demo data for the local stack: students, mock exams, past and upcoming bookings.

    seed(database_url) -> {"contacts": 301, "upcoming_bookings": ..., ...}

What is in it, and why:
* 300 students with varied balances (some with none left), most mirrored from HubSpot
  (hubspot_id set), some created in Postgres only (hubspot_id NULL, not yet synced),
  plus DEMO001 / demo001@example.com with 5 credits of each kind to log in with.
* Upcoming mock exams of all four types over the next six weeks (America/Toronto
  times), with capacities from empty to full: at least one full, some with one or two
  seats left, a couple inactive ('false') or not yet open ('scheduled'). Some Mock
  Discussions require attendance at a past exam; DEMO001 attended one of them.
* Past exams with bookings attended ('Yes'), missed ('No'), cancelled, and in the last
  week not yet marked. Older ones carry booking codes in the legacy form
  ("Clinical Skills-1599999-March 1, 2026"), newer ones the BK- form.

Upcoming bookings are made by hubspot_sync.book() itself, so seats, credits and the
audit log agree exactly as they would in production. book() refuses exams that have
started, so past bookings are inserted directly, with seat counts that match them.

Idempotent: does nothing (and returns zero counts) when DEMO001 already exists. One
transaction: a failure leaves nothing behind. Reproducible: a fixed random seed, with
dates relative to today; only what book() generates itself (booking UUIDs and BK
codes of upcoming bookings) differs between runs.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

RANDOM_SEED = 20251203
STUDENT_COUNT = 300
DEMO_STUDENT_ID = "DEMO001"
DEMO_EMAIL = "demo001@example.com"
DEMO_CREDITS = 5
UPCOMING_WEEKS = 6
PAST_WEEKS = 8
# Attendance of the last week's exams is typically not marked yet.
UNMARKED_DAYS = 7
# Bookings older than this came from the replaced system and keep its code format.
LEGACY_BEFORE_DAYS = 21
TORONTO = ZoneInfo("America/Toronto")

CREDIT_KINDS = (
    "sj_credits",
    "cs_credits",
    "sjmini_credits",
    "mock_discussion_token",
    "shared_mock_credits",
)
CITY_LOCATIONS = (
    "Mississauga",
    "Mississauga - B9",
    "Mississauga - Lab D",
    "Calgary",
    "Vancouver",
    "Montreal",
    "Richmond Hill",
)
ONLINE = "Online"
# Attending-location slugs by exam location (the Mississauga rooms are one city).
LOCATION_SLUGS = {
    "Mississauga": "mississauga",
    "Mississauga - B9": "mississauga",
    "Mississauga - Lab D": "mississauga",
    "Calgary": "calgary",
    "Vancouver": "vancouver",
    "Montreal": "montreal",
    "Richmond Hill": "richmond_hill",
    ONLINE: "online",
}
# The replaced system stored proper-case names.
LEGACY_LOCATION_NAMES = {
    "mississauga": "Mississauga",
    "calgary": "Calgary",
    "vancouver": "Vancouver",
    "montreal": "Montreal",
    "richmond_hill": "Richmond Hill",
    "online": "Online",
}
MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # as hubspot_sync._new_booking_code
FIRST_NAMES = (
    "Aisha", "Amir", "Ana", "Arjun", "Chen", "Chloe", "Daniel", "Elena", "Emily", "Fatima",
    "Gabriel", "Hana", "Hassan", "Isabelle", "Jasleen", "Jin", "Karan", "Laila", "Liam",
    "Lucas", "Maya", "Mehdi", "Mina", "Nadia", "Noah", "Olivia", "Omar", "Priya", "Rahul",
    "Reza", "Sara", "Sofia", "Tariq", "Wei", "Yasmin", "Zara",
)  # fmt: skip
LAST_NAMES = (
    "Ahmed", "Ali", "Bouchard", "Brown", "Chan", "Chen", "Das", "Gagnon", "Garcia", "Gill",
    "Hosseini", "Huang", "Khan", "Kim", "Kumar", "Lee", "Li", "Martin", "Mohammed", "Nguyen",
    "Patel", "Rahimi", "Roy", "Sandhu", "Santos", "Shah", "Singh", "Smith", "Tremblay",
    "Wang", "Wong", "Zhang",
)  # fmt: skip

# Rejections book() may legitimately give while filling exams: the student drawn
# cannot pay, already sits another exam of that type that day, or lacks the
# prerequisite. Anything else means the seed or the function is wrong.
SKIPPABLE_REJECTIONS = frozenset(
    {"INSUFFICIENT_CREDITS", "DUPLICATE_BOOKING", "PREREQUISITE_NOT_MET"}
)


class SeedError(RuntimeError):
    """The demo data could not be loaded; nothing was written."""


@dataclass(frozen=True)
class _Type:
    mock_type: str
    upcoming_per_week: int
    past_per_week: int
    start: time
    minutes: int
    capacity: tuple[int, int]
    locations: tuple[str, ...]
    # token_used of past bookings, with weights (the shared credit, admin bookings)
    tokens: tuple[tuple[str, int], ...]


TYPES = (
    _Type(
        "Situational Judgment", 2, 1, time(9, 0), 180, (16, 36), (*CITY_LOCATIONS, ONLINE),
        (("Situational Judgment Token", 80), ("Shared Token", 15), ("Admin Override", 5)),
    ),
    _Type(
        "Clinical Skills", 2, 2, time(13, 0), 240, (8, 16), CITY_LOCATIONS,
        (("Clinical Skills Token", 80), ("Shared Token", 15), ("Admin Override", 5)),
    ),
    _Type(
        "Mini-mock", 2, 1, time(18, 30), 90, (12, 30), (*CITY_LOCATIONS, ONLINE),
        (("Mini-mock Token", 95), ("Admin Override", 5)),
    ),
    _Type(
        "Mock Discussion", 1, 1, time(19, 0), 90, (10, 24), (ONLINE, ONLINE, "Mississauga"),
        (("Mock Discussion Token", 100),),
    ),
)  # fmt: skip


@dataclass(eq=False)  # identity: two students are never the same by value
class _Contact:
    id: uuid.UUID
    hubspot_id: str | None
    student_id: str
    email: str
    firstname: str
    lastname: str
    sj_credits: int
    cs_credits: int
    sjmini_credits: int
    mock_discussion_token: int
    shared_mock_credits: int
    ndecc_exam_date: str | None
    created_at: datetime
    synced_at: datetime | None

    @property
    def name(self) -> str:
        return f"{self.firstname} {self.lastname}"


@dataclass(eq=False)  # identity, and usable as a dict key
class _Exam:
    id: uuid.UUID
    hubspot_id: str
    mock_type: str
    mock_set: str | None
    exam_date: date
    start_time: datetime
    end_time: datetime
    location: str
    capacity: int
    is_active: str = "true"
    scheduled_activation_datetime: datetime | None = None
    prerequisite_exam_ids: list[str] = field(default_factory=list)
    total_bookings: int = 0
    target: int = 0  # upcoming only: seats book() should fill

    @property
    def name(self) -> str:
        return f"{self.mock_type}-{self.location}-{self.exam_date.isoformat()}"


@dataclass
class _Plan:
    contacts: list[_Contact]
    upcoming: list[_Exam]
    past: list[_Exam]
    past_bookings: list[dict[str, Any]]
    full_exam: _Exam


class _Ids:
    """Reproducible, unique identifiers drawn from the seeded generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def unique(self, make: Callable[[], object]) -> str:
        while True:
            value = str(make())
            if value not in self.used:
                self.used.add(value)
                return value

    def number(self, low: int, high: int) -> str:
        """A HubSpot-style numeric id."""
        return self.unique(lambda: self.rng.randrange(low, high))


def _at(day: date, start: time) -> datetime:
    return datetime.combine(day, start, tzinfo=TORONTO)


def _legacy_code(mock_type: str, student_id: str, day: date) -> str:
    # Formatted from the date's parts: the replaced system's en-US long date, without
    # depending on this machine's locale.
    return f"{mock_type}-{student_id}-{MONTHS[day.month - 1]} {day.day}, {day.year}"


# ---------------------------------------------------------------- planning (pure)


def _plan(now: datetime) -> _Plan:
    rng = random.Random(RANDOM_SEED)  # noqa: S311 - reproducible demo data, not secrets
    ids = _Ids(rng)
    today = now.astimezone(TORONTO).date()
    contacts = _plan_contacts(rng, ids, now)
    past = _plan_exams(rng, ids, today, upcoming=False)
    upcoming = _plan_exams(rng, ids, today, upcoming=True)
    past_bookings, demo_attended = _plan_past_bookings(
        rng, ids, today=today, past=past, contacts=contacts
    )
    full_exam = _shape_upcoming(
        rng, now=now, upcoming=upcoming, past=past, demo_attended=demo_attended
    )
    return _Plan(contacts, upcoming, past, past_bookings, full_exam)


def _plan_contacts(rng: random.Random, ids: _Ids, now: datetime) -> list[_Contact]:
    demo = _Contact(
        id=ids.uuid(),
        hubspot_id=ids.number(10**8, 10**9),
        student_id=ids.unique(lambda: DEMO_STUDENT_ID),
        email=DEMO_EMAIL,
        firstname="Demo",
        lastname="Student",
        **dict.fromkeys(CREDIT_KINDS, DEMO_CREDITS),
        ndecc_exam_date=(now.date() + timedelta(days=120)).isoformat(),
        created_at=now - timedelta(days=200),
        synced_at=now - timedelta(minutes=30),
    )
    contacts = [demo]
    for n in range(1, STUDENT_COUNT + 1):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        # Most ids are the school's 7-digit numbers; some carry a letter prefix.
        if rng.random() < 0.75:
            student_id = ids.unique(lambda: rng.randrange(1_000_000, 2_000_000))
        else:
            student_id = ids.unique(
                lambda: (
                    "".join(rng.choices("ABCDEFGHJKLMNPRSTUVWXYZ", k=2))
                    + f"{rng.randrange(10_000, 100_000)}"
                )
            )
        in_hubspot = rng.random() < 0.85
        exhausted = rng.random() < 0.1  # spent everything: the "no credits" screens
        balances = {
            kind: 0
            if exhausted
            else rng.choices([0, 1, 2, 3, 4, 6, 10], [22, 25, 20, 14, 8, 6, 5])[0]
            for kind in CREDIT_KINDS[:4]
        }
        balances["shared_mock_credits"] = (
            0 if exhausted else rng.choices([0, 1, 2, 3, 5], [60, 16, 12, 7, 5])[0]
        )
        created = now - timedelta(days=rng.randint(30, 400) if in_hubspot else rng.randint(0, 10))
        contacts.append(
            _Contact(
                id=ids.uuid(),
                hubspot_id=ids.number(10**8, 10**9) if in_hubspot else None,
                student_id=student_id,
                email=f"{first}.{last}{n}@example.com".lower(),
                firstname=first,
                lastname=last,
                **balances,
                ndecc_exam_date=(
                    (now.date() + timedelta(days=rng.randint(30, 240))).isoformat()
                    if rng.random() < 0.7
                    else None
                ),
                created_at=created,
                synced_at=now - timedelta(minutes=rng.randint(5, 120)) if in_hubspot else None,
            )
        )
    return contacts


def _plan_exams(rng: random.Random, ids: _Ids, today: date, *, upcoming: bool) -> list[_Exam]:
    exams = []
    weeks = UPCOMING_WEEKS if upcoming else PAST_WEEKS
    for week in range(weeks):
        # Upcoming: days 1..42 (never today: an exam must not have started). Past:
        # days -1..-56.
        days = range(7 * week + 1, 7 * week + 8)
        for kind in TYPES:
            count = kind.upcoming_per_week if upcoming else kind.past_per_week
            for offset in sorted(rng.sample(days, count)):
                day = today + timedelta(days=offset if upcoming else -offset)
                start = _at(day, kind.start)
                exams.append(
                    _Exam(
                        id=ids.uuid(),
                        hubspot_id=ids.number(3 * 10**10, 4 * 10**10),
                        mock_type=kind.mock_type,
                        # Mini-mocks have no set.
                        mock_set=None if kind.mock_type == "Mini-mock" else rng.choice("ABCDEFGH"),
                        exam_date=day,
                        start_time=start,
                        end_time=start + timedelta(minutes=kind.minutes),
                        location=rng.choice(kind.locations),
                        capacity=rng.randint(*kind.capacity),
                        # Nothing deactivated past exams in the replaced system.
                        is_active="true" if upcoming or rng.random() < 0.85 else "false",
                    )
                )
    exams.sort(key=lambda exam: exam.start_time)
    return exams


def _paid_with(rng: random.Random, mock_type: str) -> str:
    """token_used of a past booking of this type, drawn with the type's weights."""
    kind = next(t for t in TYPES if t.mock_type == mock_type)
    names = [name for name, _ in kind.tokens]
    weights = [weight for _, weight in kind.tokens]
    return rng.choices(names, weights)[0]


class _PastBookings:
    """Rows for hubspot_bookings on past exams. Each exam's total_bookings follows
    its seat-holding (Active/Completed) rows as they are added."""

    def __init__(self, rng: random.Random, ids: _Ids, today: date) -> None:
        self.rng = rng
        self.ids = ids
        self.today = today
        self.rows: list[dict[str, Any]] = []
        # (student, date, type) holding a seat: one each (rule 4, and the unique
        # index uq_bookings_one_per_student_day_type).
        self.held: set[tuple[str, date, str]] = set()

    def holds(self, contact: _Contact, exam: _Exam) -> bool:
        return (contact.student_id, exam.exam_date, exam.mock_type) in self.held

    def add(self, exam: _Exam, contact: _Contact, status: str, attendance: str | None) -> None:
        rng = self.rng
        legacy = (self.today - exam.exam_date).days > LEGACY_BEFORE_DAYS
        paid_with = _paid_with(rng, exam.mock_type)
        refunded = status == "Cancelled" and paid_with != "Admin Override" and rng.random() < 0.8
        booked_at = exam.start_time - timedelta(
            days=rng.randint(2, 30), minutes=rng.randint(0, 600)
        )
        if legacy:
            code = _legacy_code(exam.mock_type, contact.student_id, exam.exam_date)
            booking_status = {"Active": "confirmed", "Completed": "completed"}.get(
                status, "cancelled"
            )
        else:
            code = self.ids.unique(
                lambda: f"BK-{exam.exam_date:%Y%m%d}-{''.join(rng.choices(CODE_ALPHABET, k=6))}"
            )
            booking_status = status
        self.rows.append(
            {
                "id": self.ids.uuid(),
                "hubspot_id": self.ids.number(5 * 10**10, 6 * 10**10),
                "booking_id": code,
                "associated_mock_exam": exam.hubspot_id,
                "associated_contact_id": contact.hubspot_id,
                "student_id": contact.student_id,
                "name": contact.name,
                "student_email": contact.email,
                "is_active": status,
                "booking_status": booking_status,
                "attendance": attendance,
                "attending_location": self._attending_location(exam, legacy),
                "exam_date": exam.exam_date,
                "dominant_hand": self._dominant_hand(exam, legacy),
                "token_used": paid_with,
                "token_refunded": "true" if refunded else None,
                "token_refunded_at": booked_at + timedelta(days=1) if refunded else None,
                "start_time": exam.start_time,
                "end_time": exam.end_time,
                "idempotency_key": f"idem_{rng.getrandbits(128):032x}",
                "mock_type": exam.mock_type,
                "mock_set": exam.mock_set,
                "created_at": booked_at,
                "updated_at": booked_at + timedelta(days=1)
                if status == "Cancelled"
                else exam.end_time,
                "synced_at": exam.end_time + timedelta(hours=2),
            }
        )
        if status in ("Active", "Completed"):
            self.held.add((contact.student_id, exam.exam_date, exam.mock_type))
        if status == "Active":  # seats are Active bookings (20251203000900)
            exam.total_bookings += 1

    def _attending_location(self, exam: _Exam, legacy: bool) -> str | None:
        if exam.mock_type == "Clinical Skills" and legacy:
            return exam.location  # the old system defaulted CS to the exam's own location
        if exam.mock_type not in ("Situational Judgment", "Mini-mock"):
            return None
        slug = (
            LOCATION_SLUGS[exam.location]
            if self.rng.random() < 0.85
            else self.rng.choice(list(LEGACY_LOCATION_NAMES))
        )
        return LEGACY_LOCATION_NAMES[slug] if legacy else slug

    def _dominant_hand(self, exam: _Exam, legacy: bool) -> str | None:
        if exam.mock_type != "Clinical Skills":
            return None
        if legacy:  # the old system stored booleans and words alike
            return self.rng.choice(("true", "true", "Right", "false", "Left"))
        return "right" if self.rng.random() < 0.88 else "left"


def _plan_past_bookings(
    rng: random.Random, ids: _Ids, *, today: date, past: list[_Exam], contacts: list[_Contact]
) -> tuple[list[dict[str, Any]], _Exam]:
    """Bookings of past exams, and the exam DEMO001 (contacts[0]) attended."""
    bookings = _PastBookings(rng, ids, today)
    demo = contacts[0]
    mirrored = [c for c in contacts[1:] if c.hubspot_id is not None]  # old rows came from HubSpot
    marked = [e for e in past if (today - e.exam_date).days > UNMARKED_DAYS]
    # DEMO001 attended a Clinical Skills exam (a Mock Discussion prerequisite below),
    # missed a Situational Judgment one and cancelled a Mini-mock.
    demo_attended = next(e for e in reversed(marked) if e.mock_type == "Clinical Skills")
    bookings.add(demo_attended, demo, "Completed", "Yes")
    missed = next(e for e in marked if e.mock_type == "Situational Judgment")
    bookings.add(missed, demo, "Completed", "No")
    bookings.add(next(e for e in marked if e.mock_type == "Mini-mock"), demo, "Cancelled", None)

    rebooked_legacy = False
    for exam in past:
        unmarked = (today - exam.exam_date).days <= UNMARKED_DAYS
        seats = min(exam.capacity, round(exam.capacity * rng.uniform(0.55, 1.0)))
        candidates = rng.sample(mirrored, len(mirrored))
        free = [c for c in candidates if not bookings.holds(c, exam)]
        holders = free[: max(seats - exam.total_bookings, 0)]
        for contact in holders:
            if unmarked and rng.random() < 0.6:
                bookings.add(exam, contact, "Active", None)
            else:
                bookings.add(exam, contact, "Completed", "Yes" if rng.random() < 0.85 else "No")
        cancellers = [c for c in candidates if c not in holders][: rng.randint(0, 3)]
        if not rebooked_legacy and holders and (today - exam.exam_date).days > LEGACY_BEFORE_DAYS:
            # A student who cancelled and rebooked the same exam: two rows, one legacy
            # code, which look-ups by code must tell apart by owner and status.
            cancellers.insert(0, holders[0])
            rebooked_legacy = True
        for contact in cancellers:
            bookings.add(exam, contact, "Cancelled", None)
    return bookings.rows, demo_attended


def _shape_upcoming(
    rng: random.Random,
    *,
    now: datetime,
    upcoming: list[_Exam],
    past: list[_Exam],
    demo_attended: _Exam,
) -> _Exam:
    """Statuses, prerequisites and fill targets of upcoming exams; returns the one
    to be filled to capacity."""
    by_type = {t.mock_type: [e for e in upcoming if e.mock_type == t.mock_type] for t in TYPES}
    full = by_type["Situational Judgment"][2]
    full.capacity = 10  # small, so the students who can pay surely fill it
    nearly_full = {by_type["Clinical Skills"][1]: 1, by_type["Mini-mock"][3]: 2}
    closed = [by_type["Situational Judgment"][5], by_type["Mini-mock"][1]]
    not_yet_open = [by_type["Clinical Skills"][-1], by_type["Situational Judgment"][-2]]
    for exam in closed:
        exam.is_active = "false"
    for exam in not_yet_open:
        exam.is_active = "scheduled"
        exam.scheduled_activation_datetime = now + timedelta(days=rng.randint(2, 5), hours=3)

    today = now.astimezone(TORONTO).date()
    attended_kinds = [
        e
        for e in past
        if e.mock_type in ("Clinical Skills", "Situational Judgment")
        and (today - e.exam_date).days > UNMARKED_DAYS
        and e is not demo_attended
    ]
    for n, exam in enumerate(by_type["Mock Discussion"]):
        if n == 0:
            # DEMO001 can book this one: it lists the exam they attended.
            prerequisites = [demo_attended, *rng.sample(attended_kinds, 1)]
        elif n % 2 == 1:
            # ... and not these: they attended none of what these require.
            prerequisites = rng.sample(attended_kinds, rng.randint(1, 3))
        else:
            prerequisites = []
        exam.prerequisite_exam_ids = [p.hubspot_id for p in prerequisites]

    for exam in upcoming:
        if exam.is_active != "true":
            exam.target = 0
        elif exam is full:
            exam.target = exam.capacity
        elif exam in nearly_full:
            exam.target = exam.capacity - nearly_full[exam]
        else:
            exam.target = round(exam.capacity * rng.uniform(0.1, 0.75))
    return full


# ---------------------------------------------------------------- writing


_INSERT_CONTACT = """
insert into hubspot_sync.hubspot_contact_credits
  (id, hubspot_id, student_id, email, firstname, lastname, sj_credits, cs_credits,
   sjmini_credits, mock_discussion_token, shared_mock_credits, ndecc_exam_date,
   created_at, updated_at, synced_at, hubspot_last_sync_at)
values
  (%(id)s, %(hubspot_id)s, %(student_id)s, %(email)s, %(firstname)s, %(lastname)s,
   %(sj_credits)s, %(cs_credits)s, %(sjmini_credits)s, %(mock_discussion_token)s,
   %(shared_mock_credits)s, %(ndecc_exam_date)s, timezone('UTC', %(created_at)s::timestamptz),
   timezone('UTC', %(created_at)s::timestamptz),
   timezone('UTC', %(synced_at)s::timestamptz), %(synced_at)s::timestamptz)
"""

_INSERT_EXAM = """
insert into hubspot_sync.hubspot_mock_exams
  (id, hubspot_id, mock_exam_name, mock_type, mock_set, exam_date, start_time, end_time,
   location, capacity, total_bookings, is_active, scheduled_activation_datetime,
   prerequisite_exam_ids, created_at, updated_at, synced_at, hubspot_last_sync_at)
values
  (%(id)s, %(hubspot_id)s, %(name)s, %(mock_type)s, %(mock_set)s, %(exam_date)s,
   hubspot_sync.time_text(%(start_time)s), hubspot_sync.time_text(%(end_time)s),
   %(location)s, %(capacity)s, %(total_bookings)s,
   %(is_active)s, %(scheduled_activation_datetime)s, %(prerequisite_exam_ids)s,
   timezone('UTC', %(created_at)s::timestamptz), timezone('UTC', %(created_at)s::timestamptz),
   timezone('UTC', %(synced_at)s::timestamptz), %(synced_at)s::timestamptz)
"""

_INSERT_BOOKING = """
insert into hubspot_sync.hubspot_bookings
  (id, hubspot_id, booking_id, associated_mock_exam, associated_contact_id, student_id,
   name, student_email, is_active, booking_status, attendance, attending_location,
   exam_date, dominant_hand, token_used, token_refunded, token_refunded_at, start_time,
   end_time, idempotency_key, mock_type, mock_set, created_at, updated_at, synced_at,
   hubspot_last_sync_at)
values
  (%(id)s, %(hubspot_id)s, %(booking_id)s, %(associated_mock_exam)s,
   %(associated_contact_id)s, %(student_id)s, %(name)s, %(student_email)s, %(is_active)s,
   %(booking_status)s, %(attendance)s, %(attending_location)s, %(exam_date)s,
   %(dominant_hand)s, %(token_used)s, %(token_refunded)s, %(token_refunded_at)s,
   hubspot_sync.time_text(%(start_time)s), hubspot_sync.time_text(%(end_time)s),
   %(idempotency_key)s, %(mock_type)s, %(mock_set)s,
   timezone('UTC', %(created_at)s::timestamptz), timezone('UTC', %(updated_at)s::timestamptz),
   timezone('UTC', %(synced_at)s::timestamptz), %(synced_at)s::timestamptz)
"""

_BOOK = """
select hubspot_sync.book(
  p_student_id => %(student_id)s,
  p_email => %(email)s,
  p_exam_id => %(exam_id)s,
  p_attending_location => %(attending_location)s,
  p_dominant_hand => %(dominant_hand)s,
  p_idempotency_key => %(idempotency_key)s)
"""

# Seat counts must equal seat-holding bookings for every exam: checked before commit.
_SEAT_DRIFT = """
select e.mock_exam_name, (hubspot_sync._seat_state(e)).booked,
       count(b.id) filter (where b.is_active in ('Active', 'Completed')) as held
  from hubspot_sync.hubspot_mock_exams e
  left join hubspot_sync.hubspot_bookings b on b.associated_mock_exam = e.hubspot_id
 group by e.id
having (hubspot_sync._seat_state(e)).booked <> count(b.id) filter (where b.is_active = 'Active')
"""

COUNT_KEYS = (
    "contacts",
    "contacts_without_hubspot_id",
    "mock_exams",
    "upcoming_exams",
    "past_exams",
    "past_bookings",
    "upcoming_bookings",
)


def seed(database_url: str) -> dict[str, int]:
    """Load the demo data into a migrated database; return how many rows of each kind
    this call created (all zero when the data is already there)."""
    now = datetime.now(UTC)
    plan = _plan(now)
    with psycopg.connect(database_url, prepare_threshold=None) as conn, conn.transaction():
        if conn.execute("select to_regproc('hubspot_sync.book')").fetchone() == (None,):
            raise SeedError("the database is not migrated; run lib.migrations.up first")
        # Two `./run dev` starting together: the second waits, then finds DEMO001.
        conn.execute("select pg_advisory_xact_lock(hashtext('local.seed'))")
        if conn.execute(
            "select 1 from hubspot_sync.hubspot_contact_credits where student_id = %s",
            (DEMO_STUDENT_ID,),
        ).fetchone():
            return dict.fromkeys(COUNT_KEYS, 0)
        # Who and why, for the audit rows of the direct inserts (book() then names
        # each student itself).
        conn.execute("select set_config('app.actor', 'seed', true)")
        conn.execute("select set_config('app.reason', 'local demo data (local/seed.py)', true)")
        _insert(conn, plan, now)
        booked = _book_upcoming(conn, plan)
        _check(conn)
    return {
        "contacts": len(plan.contacts),
        "contacts_without_hubspot_id": sum(c.hubspot_id is None for c in plan.contacts),
        "mock_exams": len(plan.upcoming) + len(plan.past),
        "upcoming_exams": len(plan.upcoming),
        "past_exams": len(plan.past),
        "past_bookings": len(plan.past_bookings),
        "upcoming_bookings": booked,
    }


def _insert(conn: psycopg.Connection[Any], plan: _Plan, now: datetime) -> None:
    with conn.cursor() as cur:
        cur.executemany(_INSERT_CONTACT, [vars(c) for c in plan.contacts])
        cur.executemany(
            _INSERT_EXAM,
            [
                {
                    **vars(exam),
                    "name": exam.name,
                    "created_at": min(now, exam.start_time) - timedelta(days=30),
                    "synced_at": now - timedelta(minutes=20),
                }
                for exam in plan.past + plan.upcoming
            ],
        )
        cur.executemany(_INSERT_BOOKING, plan.past_bookings)
        # The past bookings were written around book(): deal the exams' seat shards
        # from them (20251212000100).
        cur.execute("select hubspot_sync.recount_seats(id) from hubspot_sync.hubspot_mock_exams")


def _book_upcoming(conn: psycopg.Connection[Any], plan: _Plan) -> int:
    """Fill each open upcoming exam to its target through hubspot_sync.book()."""
    rng = random.Random(RANDOM_SEED + 1)  # noqa: S311 - as in _plan
    students = plan.contacts[1:]  # DEMO001 keeps all five of each
    booked = 0
    for exam in plan.upcoming:
        if exam.target == 0:
            continue
        filled = 0
        for student in rng.sample(students, len(students)):
            if filled == exam.target:
                break
            result = _call_book(conn, rng, exam, student)
            if result.get("ok"):
                filled += 1
            elif result.get("code") not in SKIPPABLE_REJECTIONS:
                raise SeedError(f"book() refused {student.student_id} on {exam.name}: {result}")
        if exam is plan.full_exam and filled < exam.capacity:
            raise SeedError(f"only {filled} students could book {exam.name}; it must be full")
        booked += filled
    return booked


def _call_book(
    conn: psycopg.Connection[Any], rng: random.Random, exam: _Exam, student: _Contact
) -> dict[str, Any]:
    location = hand = None
    if exam.mock_type in ("Situational Judgment", "Mini-mock"):
        location = (
            LOCATION_SLUGS[exam.location]
            if rng.random() < 0.85
            else rng.choice(list(LEGACY_LOCATION_NAMES))
        )
    if exam.mock_type == "Clinical Skills":
        hand = "right" if rng.random() < 0.88 else "left"
    row = conn.execute(
        _BOOK,
        {
            "student_id": student.student_id,
            "email": student.email,
            "exam_id": str(exam.id),
            "attending_location": location,
            "dominant_hand": hand,
            "idempotency_key": f"seed-{exam.hubspot_id}-{student.student_id}",
        },
    ).fetchone()
    if row is None or not isinstance(row[0], dict):
        raise SeedError(f"book() returned {row!r}")
    return row[0]


def _check(conn: psycopg.Connection[Any]) -> None:
    drift = conn.execute(_SEAT_DRIFT).fetchall()
    if drift:
        raise SeedError(f"seat counts disagree with bookings: {drift}")
    demo = conn.execute(
        "select hubspot_sync._credits_json(c) from hubspot_sync.hubspot_contact_credits c"
        " where student_id = %s",
        (DEMO_STUDENT_ID,),
    ).fetchone()
    if demo is None or demo[0] != dict.fromkeys(CREDIT_KINDS, DEMO_CREDITS):
        raise SeedError(f"{DEMO_STUDENT_ID} should hold {DEMO_CREDITS} of each credit: {demo}")
