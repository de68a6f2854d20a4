"""Fixtures for the HubSpot tests: a fresh stand-in per test (cheap: one thread and
one socket), and a raw HTTP helper that speaks to it as any HubSpot client would."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from local.standins.hubspot import HubSpotStandIn, default_types, serve

TOKEN = "pat-test-0000-hubspot-standin"
# A stand-in on localhost that does not answer within this is broken.
HTTP_TIMEOUT_S = 5


@pytest.fixture
def standin() -> Iterator[HubSpotStandIn]:
    """Budgets generous enough that no test meets them unless it lowers them. These
    tests exercise HubSpot's upsert itself, so booking_id is made a unique property
    here; the school's portal (every sync test) has no such key."""
    with serve(
        TOKEN,
        per_10s=10_000,
        interval_ms=1000,
        search_per_s=10_000,
        types=default_types(unique_booking_id=True),
    ) as running:
        yield running


class Raw:
    """Plain requests against the stand-in, to check shapes byte for byte."""

    def __init__(self, standin: HubSpotStandIn) -> None:
        self.url = standin.url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {TOKEN}"

    def post(self, path: str, body: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", HTTP_TIMEOUT_S)
        return self.session.post(self.url + path, json=body, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", HTTP_TIMEOUT_S)
        return self.session.get(self.url + path, **kwargs)

    def patch(self, path: str, body: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", HTTP_TIMEOUT_S)
        return self.session.patch(self.url + path, json=body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", HTTP_TIMEOUT_S)
        return self.session.delete(self.url + path, **kwargs)


@pytest.fixture
def raw(standin: HubSpotStandIn) -> Iterator[Raw]:
    helper = Raw(standin)
    yield helper
    helper.session.close()
