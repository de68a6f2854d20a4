"""mapping.credit_changes_elsewhere: what other sources changed in a contact's balances,
read from HubSpot's property history, against a model of a history replayed change by
change. Pure: no database, no HubSpot."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from lib.hubspot.mapping import CREDIT_KINDS, credit_changes_elsewhere, epoch_ms

APP = "3100001"
OURS = ("INTEGRATION", APP)
SOURCES = [OURS, ("CRM_UI", "userId:1"), ("INTEGRATION", "77"), ("AUTOMATION_PLATFORM", "wf-9")]


# Change n of a test's history happens at BASE + n ms; `since` values are offsets too.
BASE = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
BASE_MS = epoch_ms(BASE)


def _since(offset: int) -> int:
    return BASE_MS + offset


def _entry(value: int | str, ms: int, source: tuple[str, str]) -> dict[str, Any]:
    at = BASE + timedelta(milliseconds=ms)
    return {
        "value": str(value),
        "timestamp": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "sourceType": source[0],
        "sourceId": source[1],
    }


def _history(changes: Sequence[tuple[int | str, tuple[str, str]]], kind: str) -> dict[str, Any]:
    """HubSpot's shape: newest first, one change per millisecond."""
    return {kind: [_entry(v, ms, s) for ms, (v, s) in reversed(list(enumerate(changes)))]}


def test_an_admin_edit_after_our_push_counts_and_our_push_does_not() -> None:
    history = _history([(5, OURS), (4, OURS), (7, SOURCES[1])], "cs_credits")

    assert credit_changes_elsewhere(history, since_ms=_since(0), app_id=APP) == [0, 3, 0, 0, 0]


def test_changes_at_or_before_the_base_are_already_in() -> None:
    history = _history([(5, SOURCES[1]), (8, SOURCES[1]), (6, SOURCES[2])], "sj_credits")

    assert credit_changes_elsewhere(history, since_ms=_since(1), app_id=APP) == [-2, 0, 0, 0, 0]


def test_a_first_value_counts_from_zero_and_a_cleared_one_to_zero() -> None:
    history = _history([(3, SOURCES[1]), ("", SOURCES[1])], "shared_mock_credits")
    assert credit_changes_elsewhere(history, since_ms=_since(-1), app_id=APP) == [0, 0, 0, 0, 0]
    history = _history([(3, SOURCES[1])], "shared_mock_credits")
    assert credit_changes_elsewhere(history, since_ms=_since(-1), app_id=APP) == [0, 0, 0, 0, 3]


def test_another_apps_integration_writes_are_not_ours() -> None:
    history = _history([(2, OURS), (9, ("INTEGRATION", "31000010"))], "cs_credits")

    assert credit_changes_elsewhere(history, since_ms=_since(0), app_id=APP) == [0, 7, 0, 0, 0]


def test_an_unreadable_value_or_time_is_refused() -> None:
    assert (
        credit_changes_elsewhere(_history([(-1, SOURCES[1])], "cs_credits"), _since(-1), APP)
        is None
    )
    assert (
        credit_changes_elsewhere(_history([("2.5", SOURCES[1])], "cs_credits"), _since(-1), APP)
        is None
    )
    no_time = {"cs_credits": [{"value": "3", "sourceType": "CRM_UI", "sourceId": "userId:1"}]}
    assert credit_changes_elsewhere(no_time, _since(-1), APP) is None


@given(
    st.lists(st.tuples(st.integers(0, 50), st.sampled_from(SOURCES)), min_size=1, max_size=12),
    st.integers(-1, 12),
)
def test_it_is_the_sum_of_what_each_other_source_added_after_the_base(
    changes: list[tuple[int, tuple[str, str]]], since: int
) -> None:
    # Replay: each other source, at its turn, saw the value before it and set its own;
    # what it added is the difference. Our own pushes add nothing to count.
    expected = 0
    current = 0
    for ms, (value, source) in enumerate(changes):
        if ms > since and source != OURS:
            expected += value - current
        current = value

    got = credit_changes_elsewhere(_history(changes, "mock_discussion_token"), _since(since), APP)

    assert got is not None
    assert got[CREDIT_KINDS.index("mock_discussion_token")] == expected
    assert [n for i, n in enumerate(got) if CREDIT_KINDS[i] != "mock_discussion_token"] == [0] * 4
