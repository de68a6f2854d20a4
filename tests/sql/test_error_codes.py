"""Every code the SQL functions can return is known to lib/errors.py, with a status."""

from __future__ import annotations

import re

from lib import migrations
from lib.errors import ERRORS, AppError


def _codes_in_sql() -> set[str]:
    codes: set[str] = set()
    for migration in migrations.discover():
        codes.update(re.findall(r"_reject\(\s*'([A-Z_]+)'", migration.text))
    return codes


def test_every_sql_rejection_code_is_mapped() -> None:
    codes = _codes_in_sql()

    assert len(codes) >= 10, codes  # the scan really found the functions' codes
    assert codes - ERRORS.keys() == set()


def test_codes_named_by_the_spec_have_their_statuses() -> None:
    assert {c: ERRORS[c].status for c in ("EXAM_FULL", "DUPLICATE_BOOKING")} == {
        "EXAM_FULL": 409,
        "DUPLICATE_BOOKING": 409,
    }
    assert ERRORS["INSUFFICIENT_CREDITS"].status == 402
    assert ERRORS["INVALID_INPUT"].status == 400
    assert ERRORS["DATABASE_BUSY"].retryable and ERRORS["DATABASE_BUSY"].status == 503
    assert not ERRORS["EXAM_FULL"].retryable


def test_unknown_code_becomes_a_generic_internal_error() -> None:
    error = AppError("SOMETHING_NEW", "internal detail")
    assert error.code == "INTERNAL_ERROR" and error.status == 500
