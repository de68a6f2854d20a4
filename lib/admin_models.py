"""What the admin endpoints accept, validated at the edge (400 names the field). The
SQL functions check the same things again; these give the dashboard a precise field."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

CREDIT_KINDS = (
    "sj_credits",
    "cs_credits",
    "sjmini_credits",
    "mock_discussion_token",
    "shared_mock_credits",
)
# Wide enough for any real correction (a cohort's yearly package is a few dozen
# credits), narrow enough that a typo of a few extra digits is refused.
MAX_DELTA = 9999
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=500)]


def _whole_number(value: object) -> object:
    """2.0 is the integer 2 to JSON Schema, and so to public/openapi.yaml: taken as 2.
    Anything else goes to the strict check, so that `true` or `"5"` never become a
    credit and 2.5 is refused."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Delta = Annotated[
    int, BeforeValidator(_whole_number), Field(ge=-MAX_DELTA, le=MAX_DELTA, strict=True)
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=10_000)


class CreditAdjustment(_Model):
    """Signed changes per credit kind, all applied or none; zero changes are dropped."""

    deltas: dict[str, Delta]
    reason: Reason

    @field_validator("deltas")
    @classmethod
    def _known_kinds_and_some_change(cls, value: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(value) - set(CREDIT_KINDS))
        if unknown:
            raise ValueError(
                f"unknown credit kind {unknown[0][:40]!r}; use {', '.join(CREDIT_KINDS)}"
            )
        changes = {kind: delta for kind, delta in value.items() if delta != 0}
        if not changes:
            raise ValueError("name at least one credit kind with a non-zero change")
        return changes


class AdminCancellation(_Model):
    """Cancel a booking on the student's behalf. refund: give back the credit it spent
    (the default); false for a no-show or a late cancellation the school keeps."""

    refund: bool = True
    reason: Reason


class SyncTrigger(_Model):
    mode: Literal["delta", "full"] = "delta"


class RunsQuery(_Model):
    model_config = ConfigDict(extra="ignore")

    page: int = Field(default=1, ge=1, le=100_000)
    limit: int = Field(default=20, ge=1, le=100)
    include_refused: bool = False


class HistoryQuery(_Model):
    model_config = ConfigDict(extra="ignore")

    days: int = Field(default=7, ge=1, le=31)


class SearchQuery(_Model):
    model_config = ConfigDict(extra="ignore")

    q: Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=254)]
