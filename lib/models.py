"""Request models: what each endpoint accepts, validated at the edge (400 names the
field). The existing frontend sends camelCase twins of some fields and extra fields
it does not need; both are accepted, extras ignored."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StringConstraints, field_validator

MockType = Literal["Situational Judgment", "Clinical Skills", "Mini-mock", "Mock Discussion"]
MOCK_TYPES: tuple[str, ...] = MockType.__args__  # type: ignore[attr-defined]
# Where a student attends: the slugs PostgreSQL stores and their display names
# (HubSpot's option labels, lib/hubspot/mapping.py), exactly as spelt here, as product.md
# rule 7 lists them; public/openapi.yaml's enum is this list. Other spellings are refused
# (400 naming the field) so that the document and the API agree on what is valid.
AttendingLocation = Literal[
    "mississauga",
    "calgary",
    "vancouver",
    "montreal",
    "richmond_hill",
    "online",
    "Mississauga",
    "Calgary",
    "Vancouver",
    "Montreal",
    "Richmond Hill",
    "Online",
]
ATTENDING_LOCATIONS: tuple[str, ...] = AttendingLocation.__args__  # type: ignore[attr-defined]

STUDENT_ID_PATTERN = r"^[A-Za-z0-9]+$"
# Deliberately loose: the address only has to match the one stored for the student.
# No control characters (C0, DEL, C1): none belongs in an address, and
# public/openapi.yaml's Email pattern excludes the same ones.
EMAIL_PATTERN = r"^[^@\s\x00-\x1f\x7f-\x9f]+@[^@\s\x00-\x1f\x7f-\x9f]+\.[^@\s\x00-\x1f\x7f-\x9f]+$"
EXAM_REF_PATTERN = r"^[A-Za-z0-9-]+$"
# What each pattern asks for, in the words a 400 gives. pydantic's own message quotes
# the regular expression ("String should match pattern '^[^@\s\x00-...'"), and both
# frontends show an error's message to the student as it comes (lib/http.validate).
PATTERN_MESSAGES = {
    STUDENT_ID_PATTERN: "must be letters and digits only, like DEMO001",
    EMAIL_PATTERN: "must be an email address: a name, an @ and a domain",
    EXAM_REF_PATTERN: "must be a session id: letters, digits and dashes",
}

# Student ids are stored upper-case; students type them in either case.
StudentId = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        to_upper=True,
        min_length=1,
        max_length=32,
        pattern=STUDENT_ID_PATTERN,
    ),
]
Email = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, to_lower=True, min_length=3, max_length=254, pattern=EMAIL_PATTERN
    ),
]
# The exam's UUID, or its HubSpot id.
ExamRef = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=EXAM_REF_PATTERN),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, str_max_length=10_000)


class Student(_Model):
    student_id: StudentId = Field(validation_alias=AliasChoices("student_id", "studentId"))
    email: Email


class CreditCheck(Student):
    mock_type: MockType = Field(validation_alias=AliasChoices("mock_type", "mockType"))


class BookingCreate(Student):
    mock_exam_id: ExamRef = Field(validation_alias=AliasChoices("mock_exam_id", "mockExamId"))
    attending_location: AttendingLocation | None = Field(
        default=None,
        validation_alias=AliasChoices("attending_location", "attendingLocation", "location"),
    )
    dominant_hand: str | None = Field(
        default=None, validation_alias=AliasChoices("dominant_hand", "dominantHand")
    )

    @field_validator("dominant_hand", mode="before")
    @classmethod
    def _hand(cls, value: object) -> object:
        # HubSpot stores the hand as a boolean (true = right); the old frontend sent
        # booleans or 'Right'/'Left'. The database takes right/left.
        if isinstance(value, bool):
            return "right" if value else "left"
        if isinstance(value, str) and value.strip().lower() in ("right", "left", "true", "false"):
            return {"true": "right", "false": "left"}.get(
                value.strip().lower(), value.strip().lower()
            )
        if value is None:
            return None
        raise ValueError("must be right or left")


class Cancellation(Student):
    reason: str | None = Field(default=None, max_length=500)


class BookingListQuery(Student):
    filter: Literal["all", "upcoming", "past", "cancelled"] = "all"
    page: int = Field(default=1, ge=1, le=10_000)
    limit: int = Field(default=20, ge=1, le=100)


class AvailableQuery(_Model):
    mock_type: MockType
    include_capacity: bool = False
