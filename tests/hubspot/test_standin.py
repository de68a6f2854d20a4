"""The HubSpot stand-in over raw HTTP and through the official SDK: request and
response shapes, unique and read-only properties, 207 and 409, rate limits and their
429 bodies, search, associations and fault injection. A green file means the client
tests and the sync's tests exercise HubSpot's documented behaviour, not a toy."""

from __future__ import annotations

import concurrent.futures
import time
from typing import Any

import pytest
import requests

from local.standins.hubspot import (
    BOOKINGS,
    CONTACTS,
    MOCK_EXAMS,
    HubSpotStandIn,
    serve,
)
from tests.hubspot.conftest import HTTP_TIMEOUT_S, TOKEN, Raw

UPSERT = f"/crm/v3/objects/{BOOKINGS}/batch/upsert"
CREATE = f"/crm/v3/objects/{BOOKINGS}/batch/create"
READ = f"/crm/v3/objects/{BOOKINGS}/batch/read"
UPDATE = f"/crm/v3/objects/{BOOKINGS}/batch/update"
ISO = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"


def _upsert_input(code: str, **properties: Any) -> dict[str, Any]:
    return {"id": code, "idProperty": "booking_id", "properties": properties}


def _error_shape(body: dict[str, Any], category: str) -> None:
    assert body["status"] == "error"
    assert body["category"] == category
    assert isinstance(body["message"], str) and body["message"]
    assert len(body["correlationId"]) == 36


# ------------------------------------------------------------------ auth and routing


def test_missing_or_wrong_token_is_401_invalid_authentication(standin: HubSpotStandIn) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        answer = requests.post(
            standin.url + UPSERT, json={"inputs": []}, headers=headers, timeout=HTTP_TIMEOUT_S
        )
        assert answer.status_code == 401
        _error_shape(answer.json(), "INVALID_AUTHENTICATION")
    assert standin.objects(BOOKINGS) == []


def test_unknown_object_type_is_400(raw: Raw) -> None:
    answer = raw.post("/crm/v3/objects/2-999/batch/read", {"inputs": []})
    assert answer.status_code == 400
    body = answer.json()
    _error_shape(body, "VALIDATION_ERROR")
    assert body["message"] == "Unable to infer object type from: 2-999"


def test_object_names_resolve_like_type_ids(raw: Raw, standin: HubSpotStandIn) -> None:
    standin.put(CONTACTS, {"email": "a@example.com"})
    by_name = raw.post("/crm/v3/objects/contacts/search", {"limit": 10}).json()
    by_id = raw.post(f"/crm/v3/objects/{CONTACTS}/search", {"limit": 10}).json()
    assert by_name["total"] == by_id["total"] == 1


# ------------------------------------------------------------------ batch writes


def test_upsert_creates_then_updates_by_unique_property(raw: Raw, standin: HubSpotStandIn) -> None:
    first = raw.post(UPSERT, {"inputs": [_upsert_input("BK-1", name="Ann", is_active=True)]})
    assert first.status_code == 200
    body = first.json()
    assert body["status"] == "COMPLETE"
    assert {"startedAt", "completedAt"} <= set(body)
    (created,) = body["results"]
    assert created["new"] is True
    assert created["id"].isdigit()
    assert created["archived"] is False
    assert created["createdAt"] == created["updatedAt"]
    assert created["properties"]["booking_id"] == "BK-1"
    assert created["properties"]["is_active"] == "true"  # every value travels as a string
    assert created["properties"]["hs_object_id"] == created["id"]
    import re

    assert re.match(ISO, created["createdAt"])
    assert re.match(ISO, created["properties"]["hs_lastmodifieddate"])

    second = raw.post(UPSERT, {"inputs": [_upsert_input("BK-1", name="Bob")]}).json()
    (updated,) = second["results"]
    assert updated["new"] is False
    assert updated["id"] == created["id"]
    assert updated["updatedAt"] > created["updatedAt"]
    (stored,) = standin.objects(BOOKINGS)
    assert stored["properties"]["name"] == "Bob"
    assert stored["properties"]["is_active"] == "true"


def test_upsert_needs_a_unique_id_property(raw: Raw) -> None:
    for id_property in ("name", None):
        item = {"id": "x", "properties": {}}
        if id_property:
            item["idProperty"] = id_property
        answer = raw.post(UPSERT, {"inputs": [item]})
        assert answer.status_code == 400
        assert "non-unique" in answer.json()["message"]


def test_contacts_upsert_by_email_ignores_case_but_update_by_email_is_refused(
    raw: Raw, standin: HubSpotStandIn
) -> None:
    path = "/crm/v3/objects/contacts/batch/upsert"
    item = {"id": "Ann@Example.com", "idProperty": "email", "properties": {"firstname": "Ann"}}
    first = raw.post(path, {"inputs": [item]}).json()["results"][0]
    again = {"id": "ann@example.com", "idProperty": "email", "properties": {"sj_credits": "3"}}
    second = raw.post(path, {"inputs": [again]}).json()["results"][0]
    assert (first["new"], second["new"]) == (True, False)
    assert first["id"] == second["id"]
    assert len(standin.objects(CONTACTS)) == 1
    refused = raw.post(
        "/crm/v3/objects/contacts/batch/update",
        {"inputs": [{"id": "ann@example.com", "idProperty": "email", "properties": {}}]},
    )
    assert refused.status_code == 400
    assert "non-unique 0-1 property email" in refused.json()["message"]


def test_batch_limit_is_100_inputs(raw: Raw, standin: HubSpotStandIn) -> None:
    inputs = [_upsert_input(f"BK-{i}") for i in range(101)]
    answer = raw.post(UPSERT, {"inputs": inputs})
    assert answer.status_code == 400
    _error_shape(answer.json(), "VALIDATION_ERROR")
    assert raw.post(UPSERT, {"inputs": inputs[:100]}).status_code == 200
    assert len(standin.objects(BOOKINGS)) == 100


def test_two_inputs_for_one_record_reject_the_batch(raw: Raw, standin: HubSpotStandIn) -> None:
    answer = raw.post(UPSERT, {"inputs": [_upsert_input("BK-1"), _upsert_input("BK-1")]})
    assert answer.status_code == 400
    assert "Duplicate IDs" in answer.json()["message"]
    created = raw.post(CREATE, {"inputs": [{"properties": {"booking_id": "B"}}] * 2})
    assert created.status_code == 400
    assert standin.objects(BOOKINGS) == []


def test_read_only_property_fails_the_batch_with_read_only_value(
    raw: Raw, standin: HubSpotStandIn
) -> None:
    inputs = [_upsert_input("BK-1", name="ok"), _upsert_input("BK-2", mock_type="Clinical")]
    answer = raw.post(UPSERT, {"inputs": inputs})
    assert answer.status_code == 400
    body = answer.json()
    _error_shape(body, "VALIDATION_ERROR")
    assert body["message"].startswith("Property values were not valid: ")
    (detail,) = body["errors"]
    assert detail["code"] == "READ_ONLY_VALUE"
    assert detail["context"] == {"propertyName": ["mock_type"]}
    assert standin.objects(BOOKINGS) == []  # nothing of a refused batch is written
    for system in ("hs_object_id", "hs_lastmodifieddate"):
        refused = raw.post(UPSERT, {"inputs": [_upsert_input("BK-3", **{system: "1"})]})
        assert refused.json()["errors"][0]["code"] == "READ_ONLY_VALUE"


def test_unknown_property_is_property_doesnt_exist(raw: Raw) -> None:
    answer = raw.post(UPSERT, {"inputs": [_upsert_input("BK-1", colour="red")]})
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["code"] == "PROPERTY_DOESNT_EXIST"


def test_trace_ids_turn_a_failing_input_into_a_207_entry(raw: Raw, standin: HubSpotStandIn) -> None:
    inputs = [
        {"properties": {"booking_id": "BK-1"}, "objectWriteTraceId": "t1"},
        {
            "properties": {"booking_id": "BK-2", "exam_date": "2026-01-01"},
            "objectWriteTraceId": "t2",
        },
        {"properties": {"booking_id": "BK-3"}, "objectWriteTraceId": "t3"},
    ]
    answer = raw.post(CREATE, {"inputs": inputs})
    assert answer.status_code == 207
    body = answer.json()
    assert body["numErrors"] == 1
    (error,) = body["errors"]
    assert error["status"] == "error"
    assert error["category"] == "VALIDATION_ERROR"
    assert error["context"]["objectWriteTraceId"] == ["t2"]
    assert error["errors"][0]["code"] == "READ_ONLY_VALUE"
    assert sorted(r["objectWriteTraceId"] for r in body["results"]) == ["t1", "t3"]
    assert sorted(o["properties"]["booking_id"] for o in standin.objects(BOOKINGS)) == [
        "BK-1",
        "BK-3",
    ]


def test_create_with_a_taken_unique_value_is_a_409_conflict(
    raw: Raw, standin: HubSpotStandIn
) -> None:
    standin.put(BOOKINGS, {"booking_id": "BK-1"})
    answer = raw.post(
        CREATE,
        {
            "inputs": [
                {"properties": {"booking_id": "BK-9"}},
                {"properties": {"booking_id": "BK-1"}},
            ]
        },
    )
    assert answer.status_code == 409
    _error_shape(answer.json(), "CONFLICT")
    assert len(standin.objects(BOOKINGS)) == 1
    existing = standin.put(CONTACTS, {"email": "a@example.com"})
    contact = raw.post(
        "/crm/v3/objects/contacts/batch/create",
        {"inputs": [{"properties": {"email": "A@example.com"}}]},
    )
    assert contact.status_code == 409
    assert contact.json()["message"] == f"Contact already exists. Existing ID: {existing}"


def test_batch_read_reports_missing_ids_in_a_207(raw: Raw, standin: HubSpotStandIn) -> None:
    standin.put(BOOKINGS, {"booking_id": "BK-1", "name": "Ann"})
    answer = raw.post(
        READ,
        {
            "idProperty": "booking_id",
            "properties": ["name"],
            "inputs": [{"id": "BK-1"}, {"id": "BK-2"}],
        },
    )
    assert answer.status_code == 207
    body = answer.json()
    (found,) = body["results"]
    assert found["properties"]["name"] == "Ann"
    assert set(found["properties"]) >= {
        "name",
        "hs_object_id",
        "hs_createdate",
        "hs_lastmodifieddate",
    }
    (missing,) = body["errors"]
    assert missing["category"] == "OBJECT_NOT_FOUND"
    assert missing["context"]["ids"] == ["BK-2"]


def test_batch_update_by_record_id_and_missing_record(raw: Raw, standin: HubSpotStandIn) -> None:
    record_id = standin.put(BOOKINGS, {"booking_id": "BK-1", "is_active": "true"})
    answer = raw.post(
        UPDATE,
        {
            "inputs": [
                {"id": record_id, "properties": {"is_active": False}},
                {"id": "999", "properties": {"is_active": "false"}},
            ]
        },
    )
    assert answer.status_code == 207
    assert answer.json()["errors"][0]["context"]["ids"] == ["999"]
    assert standin.objects(BOOKINGS)[0]["properties"]["is_active"] == "false"


def test_get_and_patch_one_by_id_property(raw: Raw, standin: HubSpotStandIn) -> None:
    standin.put(BOOKINGS, {"booking_id": "BK-1", "name": "Ann"})
    path = f"/crm/v3/objects/{BOOKINGS}/BK-1"
    got = raw.get(path, params={"idProperty": "booking_id", "properties": "name,attendance"})
    assert got.status_code == 200
    assert got.json()["properties"]["name"] == "Ann"
    assert got.json()["properties"]["attendance"] is None  # requested but unset: null
    patched = raw.patch(
        path, {"properties": {"attendance": "Yes"}}, params={"idProperty": "booking_id"}
    )
    assert patched.status_code == 200
    assert patched.json()["properties"]["attendance"] == "Yes"
    assert raw.get(f"/crm/v3/objects/{BOOKINGS}/12345").status_code == 404


def test_booking_shows_the_computed_properties_of_its_exam(
    raw: Raw, standin: HubSpotStandIn
) -> None:
    exam = standin.put(MOCK_EXAMS, {"exam_date": "2026-03-01", "mock_type": "Situational Judgment"})
    type_id = standin.association_type(BOOKINGS, MOCK_EXAMS)
    answer = raw.post(
        CREATE,
        {
            "inputs": [
                {
                    "properties": {"booking_id": "BK-1"},
                    "associations": [
                        {
                            "to": {"id": exam},
                            "types": [
                                {
                                    "associationCategory": "USER_DEFINED",
                                    "associationTypeId": type_id,
                                }
                            ],
                        }
                    ],
                }
            ]
        },
    )
    assert answer.status_code == 201
    (booking,) = standin.objects(BOOKINGS)
    assert booking["properties"]["exam_date"] == "2026-03-01"
    assert booking["properties"]["mock_type"] == "Situational Judgment"
    (link,) = standin.associations(BOOKINGS, MOCK_EXAMS)
    assert (link.from_id, link.to_id, link.type_id) == (booking["id"], exam, type_id)
    (back,) = standin.associations(MOCK_EXAMS, BOOKINGS)
    assert (back.from_id, back.to_id) == (exam, booking["id"])


# ------------------------------------------------------------------ search


def _search(raw: Raw, body: dict[str, Any], object_type: str = CONTACTS) -> requests.Response:
    return raw.post(f"/crm/v3/objects/{object_type}/search", body)


def _flt(name: str, operator: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    condition = {"propertyName": name, "operator": operator, **extra}
    if value is not None:
        condition["value"] = value
    return {"filters": [condition]}


def test_search_operators(raw: Raw, standin: HubSpotStandIn) -> None:
    for n in range(1, 6):
        standin.put(CONTACTS, {"student_id": f"S{n}", "email": f"s{n}@x.io", "sj_credits": str(n)})
    standin.put(CONTACTS, {"student_id": "S6", "email": "s6@x.io"})  # no credits at all

    def ids(group: dict[str, Any]) -> list[str]:
        body = _search(raw, {"filterGroups": [group], "properties": ["student_id"], "limit": 200})
        assert body.status_code == 200, body.text
        return sorted(r["properties"]["student_id"] for r in body.json()["results"])

    assert ids(_flt("sj_credits", "EQ", "3")) == ["S3"]
    assert ids(_flt("sj_credits", "NEQ", "3")) == ["S1", "S2", "S4", "S5", "S6"]
    assert ids(_flt("sj_credits", "GT", "3")) == ["S4", "S5"]
    assert ids(_flt("sj_credits", "GTE", "3")) == ["S3", "S4", "S5"]
    assert ids(_flt("sj_credits", "LT", "2")) == ["S1"]
    assert ids(_flt("sj_credits", "LTE", "2")) == ["S1", "S2"]
    assert ids(_flt("sj_credits", "IN", values=["1", "5"])) == ["S1", "S5"]
    assert ids(_flt("sj_credits", "HAS_PROPERTY")) == ["S1", "S2", "S3", "S4", "S5"]
    assert ids(_flt("sj_credits", "NOT_HAS_PROPERTY")) == ["S6"]
    assert ids(_flt("email", "EQ", "S2@X.IO")) == ["S2"]  # string match ignores case
    # Filters in a group are ANDed, groups ORed.
    both = {
        "filters": [
            *_flt("student_id", "EQ", "S4")["filters"],
            *_flt("email", "EQ", "s4@x.io")["filters"],
        ]
    }
    assert ids(both) == ["S4"]
    body = _search(
        raw, {"filterGroups": [_flt("student_id", "EQ", "S1"), _flt("student_id", "EQ", "S2")]}
    )
    assert body.json()["total"] == 2


def test_search_paging_sorting_and_properties(raw: Raw, standin: HubSpotStandIn) -> None:
    for n in range(25):
        standin.put(CONTACTS, {"student_id": f"S{n:02d}", "sj_credits": str(n % 7)})
    seen: list[str] = []
    after: str | None = None
    while True:
        body: dict[str, Any] = {
            "limit": 10,
            "properties": ["student_id"],
            "sorts": [{"propertyName": "student_id", "direction": "DESCENDING"}],
        }
        if after:
            body["after"] = after
        page = _search(raw, body).json()
        assert page["total"] == 25
        seen += [r["properties"]["student_id"] for r in page["results"]]
        assert "sj_credits" not in page["results"][0]["properties"]
        assert page["results"][0]["properties"]["hs_object_id"] == page["results"][0]["id"]
        after = page.get("paging", {}).get("next", {}).get("after")
        if after is None:
            break
    assert seen == sorted((f"S{n:02d}" for n in range(25)), reverse=True)
    # The SDK sends sorts as strings; "-name" is descending.
    first = _search(
        raw, {"limit": 1, "sorts": ["-sj_credits"], "properties": ["sj_credits"]}
    ).json()
    assert first["results"][0]["properties"]["sj_credits"] == "6"


def test_search_limits(raw: Raw) -> None:
    assert _search(raw, {"limit": 201}).status_code == 400
    assert _search(raw, {"limit": 100, "after": "9950"}).status_code == 400
    too_many_groups = {"filterGroups": [_flt("email", "EQ", "x")] * 6}
    assert _search(raw, too_many_groups).status_code == 400
    too_many_filters = {"filterGroups": [{"filters": _flt("email", "EQ", "x")["filters"] * 7}]}
    assert _search(raw, too_many_filters).status_code == 400
    assert _search(raw, {"filterGroups": [_flt("email", "LIKE", "x")]}).status_code == 400


def test_search_by_modified_date_takes_epoch_milliseconds(
    raw: Raw, standin: HubSpotStandIn
) -> None:
    standin.put(BOOKINGS, {"booking_id": "old"})
    time.sleep(0.01)
    cutoff = str(int(time.time() * 1000))
    time.sleep(0.01)
    standin.put(BOOKINGS, {"booking_id": "new"})
    page = _search(
        raw,
        {
            "filterGroups": [_flt("hs_lastmodifieddate", "GTE", cutoff)],
            "properties": ["booking_id"],
        },
        BOOKINGS,
    )
    assert [r["properties"]["booking_id"] for r in page.json()["results"]] == ["new"]


def test_contacts_are_searched_on_lastmodifieddate(raw: Raw, standin: HubSpotStandIn) -> None:
    """Contacts' last-modified property is `lastmodifieddate`; a contact search on the
    custom objects' `hs_lastmodifieddate` is refused, as a filter or as a sort."""
    standin.put(CONTACTS, {"email": "late@example.com"})
    by_custom = _search(raw, {"filterGroups": [_flt("hs_lastmodifieddate", "GTE", "0")]})
    assert by_custom.status_code == 400
    sorted_by_custom = _search(
        raw, {"sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}]}
    )
    assert sorted_by_custom.status_code == 400
    page = _search(
        raw,
        {
            "filterGroups": [_flt("lastmodifieddate", "GTE", "0")],
            "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
            "properties": ["email"],
        },
    )
    assert [r["properties"]["email"] for r in page.json()["results"]] == ["late@example.com"]


def test_search_lags_new_records_when_asked(standin: HubSpotStandIn) -> None:
    with serve(TOKEN, search_lag_ms=300) as lagging:
        lagging.put(CONTACTS, {"email": "new@example.com"})
        raw = Raw(lagging)
        assert _search(raw, {}).json()["total"] == 0
        time.sleep(0.35)
        assert _search(raw, {}).json()["total"] == 1
        raw.session.close()


# ------------------------------------------------------------------ archive and merge

CONTACT_READ = "/crm/v3/objects/contacts/batch/read"


def test_deleted_record_is_missing_to_reads_writes_and_search(
    raw: Raw, standin: HubSpotStandIn
) -> None:
    import re

    record_id = standin.put(BOOKINGS, {"booking_id": "BK-1", "name": "Ann"})
    path = f"/crm/v3/objects/{BOOKINGS}/{record_id}"
    by_code = {"filterGroups": [_flt("booking_id", "EQ", "BK-1")]}
    assert _search(raw, by_code, BOOKINGS).json()["total"] == 1
    deleted = raw.delete(path)
    assert deleted.status_code == 204
    assert deleted.content == b""

    got = raw.get(path)
    assert got.status_code == 404
    _error_shape(got.json(), "OBJECT_NOT_FOUND")
    patched = raw.patch(path, {"properties": {"name": "Bob"}})
    assert patched.status_code == 404
    _error_shape(patched.json(), "OBJECT_NOT_FOUND")
    read = raw.post(READ, {"inputs": [{"id": record_id}]})
    assert read.status_code == 207
    assert read.json()["errors"][0]["category"] == "OBJECT_NOT_FOUND"
    assert read.json()["errors"][0]["context"]["ids"] == [record_id]
    update = raw.post(UPDATE, {"inputs": [{"id": record_id, "properties": {"name": "Bob"}}]})
    assert update.status_code == 207
    assert update.json()["errors"][0]["category"] == "OBJECT_NOT_FOUND"
    for groups in ([], [_flt("booking_id", "EQ", "BK-1")], [_flt("hs_object_id", "EQ", record_id)]):
        assert _search(raw, {"filterGroups": groups}, BOOKINGS).json()["total"] == 0

    # archived=true reads (and only they) reach it, marked archived.
    shelved = raw.get(path, params={"archived": "true", "properties": "name"})
    assert shelved.status_code == 200
    body = shelved.json()
    assert (body["id"], body["archived"]) == (record_id, True)
    assert body["properties"]["name"] == "Ann"
    assert re.match(ISO, body["archivedAt"])
    by_key = raw.post(
        READ + "?archived=true", {"idProperty": "booking_id", "inputs": [{"id": "BK-1"}]}
    )
    assert by_key.status_code == 200
    (found,) = by_key.json()["results"]
    assert (found["id"], found["archived"], found["archivedAt"]) == (
        record_id,
        True,
        body["archivedAt"],
    )
    live = standin.put(BOOKINGS, {"booking_id": "BK-2"})
    assert (
        raw.get(f"/crm/v3/objects/{BOOKINGS}/{live}", params={"archived": "true"}).status_code
        == 404
    )
    assert [r["id"] for r in standin.objects(BOOKINGS)] == [live]
    (bin_entry,) = standin.objects(BOOKINGS, archived=True)
    assert (bin_entry["id"], bin_entry["archived"]) == (record_id, True)


def test_batch_archive_frees_unique_values_and_drops_associations(
    raw: Raw, standin: HubSpotStandIn
) -> None:
    ann = standin.put(CONTACTS, {"email": "ann@example.com"})
    bob = standin.put(CONTACTS, {"email": "bob@example.com"})
    booking = standin.put(BOOKINGS, {"booking_id": "BK-1"})
    standin.associate(BOOKINGS, booking, CONTACTS, ann)

    archived = raw.post(
        "/crm/v3/objects/contacts/batch/archive",
        {"inputs": [{"id": ann}, {"id": bob}, {"id": "999"}]},
    )
    assert archived.status_code == 204
    assert archived.content == b""
    assert standin.objects(CONTACTS) == []
    assert standin.associations(BOOKINGS, CONTACTS) == []
    assert raw.get(f"/crm/v4/objects/{CONTACTS}/{ann}/associations/{BOOKINGS}").status_code == 404

    # HubSpot frees an archived record's unique values: a new record may take them.
    again = raw.post("/crm/v3/objects/contacts", {"properties": {"email": "ann@example.com"}})
    assert again.status_code == 201
    assert again.json()["id"] not in (ann, bob)
    by_email = raw.post(
        CONTACT_READ, {"idProperty": "email", "inputs": [{"id": "ann@example.com"}]}
    )
    assert by_email.json()["results"][0]["id"] == again.json()["id"]
    standin.archive(BOOKINGS, booking)
    upserted = raw.post(UPSERT, {"inputs": [_upsert_input("BK-1", name="Ann")]})
    assert upserted.json()["results"][0]["new"] is True
    assert upserted.json()["results"][0]["id"] != booking

    assert (
        raw.post(f"/crm/v3/objects/{BOOKINGS}/batch/archive", {"inputs": [{}] * 101}).status_code
        == 400
    )
    with pytest.raises(ValueError, match="no live"):
        standin.archive(BOOKINGS, booking)


def test_merge_makes_a_new_contact_that_both_old_ids_read(
    raw: Raw, standin: HubSpotStandIn
) -> None:
    """HubSpot's changelog "Updated merge functionality for contacts and companies":
    the merged record has a new id; both old ids answer it."""
    primary = standin.put(CONTACTS, {"email": "ann@example.com", "firstname": "Ann"})
    other = standin.put(
        CONTACTS, {"email": "ann.b@example.com", "firstname": "Annie", "lastname": "B"}
    )
    exam = standin.put(MOCK_EXAMS, {"exam_date": "2026-03-01"})
    first, second = (standin.put(BOOKINGS, {"booking_id": code}) for code in ("BK-1", "BK-2"))
    labelled = standin.association_type(BOOKINGS, CONTACTS)
    standin.associate(BOOKINGS, first, CONTACTS, primary)
    standin.associate(BOOKINGS, second, CONTACTS, other)
    standin.associate(MOCK_EXAMS, exam, CONTACTS, other)

    answer = raw.post(
        "/crm/v3/objects/contacts/merge", {"primaryObjectId": primary, "objectIdToMerge": other}
    )
    assert answer.status_code == 200
    merged = answer.json()
    new_id = merged["id"]
    assert new_id not in (primary, other)
    assert merged["archived"] is False
    properties = merged["properties"]
    assert properties["hs_merged_object_ids"] == f"{primary};{other}"
    # The primary's values are current; the other's fill the gaps.
    assert (properties["email"], properties["firstname"], properties["lastname"]) == (
        "ann@example.com",
        "Ann",
        "B",
    )

    for old in (primary, other):
        got = raw.get(f"/crm/v3/objects/contacts/{old}", params={"properties": "firstname"})
        assert got.status_code == 200
        assert got.json()["id"] == new_id  # answered under the new id
    read = raw.post(
        CONTACT_READ,
        {"properties": ["hs_merged_object_ids"], "inputs": [{"id": primary}, {"id": other}]},
    )
    assert read.status_code == 200
    assert [r["id"] for r in read.json()["results"]] == [new_id, new_id]
    assert read.json()["results"][0]["properties"]["hs_merged_object_ids"] == f"{primary};{other}"
    by_email = raw.post(
        CONTACT_READ, {"idProperty": "email", "inputs": [{"id": "ann.b@example.com"}]}
    )
    assert by_email.json()["results"][0]["id"] == new_id  # the other's email stays with it

    # Batch update by an old id is not supported (HubSpot's objects guide).
    update = raw.post(
        "/crm/v3/objects/contacts/batch/update",
        {"inputs": [{"id": other, "properties": {"sj_credits": "3"}}]},
    )
    assert update.status_code == 207
    assert update.json()["errors"][0]["category"] == "OBJECT_NOT_FOUND"
    assert update.json()["errors"][0]["context"]["ids"] == [other]
    patched = raw.patch(f"/crm/v3/objects/contacts/{other}", {"properties": {"sj_credits": "4"}})
    assert (patched.status_code, patched.json()["id"]) == (200, new_id)

    # Search knows only the new id.
    for old in (primary, other):
        assert (
            _search(raw, {"filterGroups": [_flt("hs_object_id", "EQ", old)]}).json()["total"] == 0
        )
    found = _search(
        raw,
        {
            "filterGroups": [_flt("email", "EQ", "ann@example.com")],
            "properties": ["hs_merged_object_ids"],
        },
    ).json()
    assert [r["id"] for r in found["results"]] == [new_id]
    assert found["results"][0]["properties"]["hs_merged_object_ids"] == f"{primary};{other}"

    # The associations of both move to the merged record.
    links = standin.associations(BOOKINGS, CONTACTS)
    assert sorted((a.from_id, a.to_id, a.type_id) for a in links) == [
        (first, new_id, labelled),
        (second, new_id, labelled),
    ]
    assert [a.to_id for a in standin.associations(MOCK_EXAMS, CONTACTS)] == [new_id]
    assert {a.from_id for a in standin.associations(CONTACTS, BOOKINGS)} == {new_id}
    assert [r["id"] for r in standin.objects(CONTACTS)] == [new_id]


def test_merge_contacts_helper_chains_and_refuses_bad_ids(
    raw: Raw, standin: HubSpotStandIn
) -> None:
    a, b, c = (standin.put(CONTACTS, {"email": f"{n}@example.com"}) for n in "abc")
    ab = standin.merge_contacts(a, b)
    abc = standin.merge_contacts(c, a)  # an old id stands for the record it became
    assert abc not in (a, b, c, ab)
    (only,) = standin.objects(CONTACTS)
    assert only["id"] == abc
    assert only["properties"]["hs_merged_object_ids"] == ";".join(sorted([a, b, c, ab], key=int))
    for old in (a, b, c, ab):
        assert raw.get(f"/crm/v3/objects/contacts/{old}").json()["id"] == abc

    merge = "/crm/v3/objects/contacts/merge"
    missing = raw.post(merge, {"primaryObjectId": abc, "objectIdToMerge": "999"})
    assert missing.status_code == 404
    _error_shape(missing.json(), "OBJECT_NOT_FOUND")
    itself = raw.post(merge, {"primaryObjectId": abc, "objectIdToMerge": a})
    assert itself.status_code == 400
    assert raw.post(merge, {"primaryObjectId": abc}).status_code == 400
    with pytest.raises(ValueError):
        standin.merge_contacts(abc, "999")


# ------------------------------------------------------------------ rate limits


def test_ten_secondly_budget_headers_and_429_body(raw: Raw, standin: HubSpotStandIn) -> None:
    standin.set_limits(per_interval=3, interval_ms=1000, daily=100)
    answers = [raw.post(READ, {"inputs": []}) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["X-HubSpot-RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    for answer in answers:
        assert answer.headers["X-HubSpot-RateLimit-Max"] == "3"
        assert answer.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "1000"
        assert answer.headers["X-HubSpot-RateLimit-Daily"] == "100"
    assert answers[2].headers["X-HubSpot-RateLimit-Daily-Remaining"] == "97"
    body = answers[3].json()
    assert set(body) == {"status", "message", "errorType", "correlationId", "policyName"}
    assert body["status"] == "error"
    assert body["errorType"] == "RATE_LIMIT"
    assert body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert body["message"] == "You have reached your ten_secondly_rolling limit."
    time.sleep(1.05)  # a rolling window: once the interval has passed there is room again
    assert raw.post(READ, {"inputs": []}).status_code == 200
    log = standin.requests()
    assert [r.counted for r in log] == [True, True, True, False, True]


def test_search_is_five_per_second_without_rate_headers(raw: Raw, standin: HubSpotStandIn) -> None:
    standin.set_limits(search_per_s=5)
    answers = [_search(raw, {}) for _ in range(6)]
    assert [a.status_code for a in answers] == [200] * 5 + [429]
    assert not any(h.lower().startswith("x-hubspot-ratelimit") for a in answers for h in a.headers)
    body = answers[5].json()
    assert body["policyName"] == "SECONDLY"
    assert body["errorType"] == "RATE_LIMIT"
    # Search has its own budget: the general one is untouched.
    assert raw.post(READ, {"inputs": []}).status_code == 200


def test_daily_budget_answers_daily_429(raw: Raw, standin: HubSpotStandIn) -> None:
    standin.set_limits(daily=2)
    statuses = [raw.post(READ, {"inputs": []}).status_code for _ in range(2)]
    refused = raw.post(READ, {"inputs": []})
    assert statuses == [200, 200]
    assert refused.status_code == 429
    assert refused.json()["policyName"] == "DAILY"
    assert refused.json()["message"] == "You have reached your daily limit."
    assert refused.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "0"
    assert _search(raw, {}).json()["policyName"] == "DAILY"  # the daily budget covers search


def test_separate_association_budget(raw: Raw, standin: HubSpotStandIn) -> None:
    standin.set_limits(per_interval=100, associations_per_interval=1, interval_ms=1000)
    path = f"/crm/v4/associations/{BOOKINGS}/{CONTACTS}/labels"
    assert [raw.get(path).status_code for _ in range(2)] == [200, 429]
    assert raw.post(READ, {"inputs": []}).status_code == 200


# ------------------------------------------------------------------ associations


def test_association_batches(raw: Raw, standin: HubSpotStandIn) -> None:
    contact = standin.put(CONTACTS, {"email": "a@example.com"})
    bookings = [standin.put(BOOKINGS, {"booking_id": f"BK-{n}"}) for n in range(3)]
    labels = raw.get(f"/crm/v4/associations/{BOOKINGS}/{CONTACTS}/labels").json()["results"]
    # The default (unlabelled) type, and the school's labelled one (1289).
    (default,) = [label for label in labels if label["label"] is None]
    assert default["category"] == "USER_DEFINED"
    assert {label["typeId"] for label in labels if label["label"]} == {1289}
    labelled = standin.define_association(BOOKINGS, CONTACTS, label="Attendee")
    created = raw.post(
        f"/crm/v4/associations/{BOOKINGS}/{CONTACTS}/batch/create",
        {
            "inputs": [
                {
                    "from": {"id": bookings[0]},
                    "to": {"id": contact},
                    "types": [
                        {"associationCategory": "USER_DEFINED", "associationTypeId": labelled}
                    ],
                },
                {
                    "from": {"id": bookings[1]},
                    "to": {"id": contact},
                    "types": [],
                },  # creates nothing
                {
                    "from": {"id": bookings[2]},
                    "to": {"id": contact},
                    "types": [{"associationCategory": "USER_DEFINED", "associationTypeId": 4}],
                },
            ]
        },
    )
    assert created.status_code == 207
    body = created.json()
    assert body["numErrors"] == 1
    assert body["results"][0] == {
        "fromObjectTypeId": BOOKINGS,
        "fromObjectId": int(bookings[0]),
        "toObjectTypeId": CONTACTS,
        "toObjectId": int(contact),
        "labels": ["Attendee"],
    }
    default_answer = raw.post(
        f"/crm/v4/associations/{BOOKINGS}/{CONTACTS}/batch/associate/default",
        {"inputs": [{"from": {"id": b}, "to": {"id": contact}} for b in bookings]},
    )
    assert default_answer.status_code == 200
    spec = default_answer.json()["results"][0]["associationSpec"]
    assert spec == {"associationCategory": "USER_DEFINED", "associationTypeId": default["typeId"]}
    # Read back from the contact's side: every booking, with the inverse type ids.
    back = raw.get(f"/crm/v4/objects/{CONTACTS}/{contact}/associations/{BOOKINGS}").json()
    assert [r["toObjectId"] for r in back["results"]] == [int(b) for b in bookings]
    assert len(back["results"][0]["associationTypes"]) == 2  # labelled and default
    # Again: creating an existing association is harmless.
    again = raw.post(
        f"/crm/v4/associations/{BOOKINGS}/{CONTACTS}/batch/associate/default",
        {"inputs": [{"from": {"id": bookings[0]}, "to": {"id": contact}}]},
    )
    assert again.status_code == 200
    assert len(standin.associations(BOOKINGS, CONTACTS)) == 4


def test_single_get_lists_associations_by_type_name(raw: Raw, standin: HubSpotStandIn) -> None:
    """HubSpot's shape: `associations: {<plural name>: {results: [{id, type}]}}`, one
    entry per association type; types asked for by name or id, unknown ones ignored."""
    contact = standin.put(CONTACTS, {"email": "ann@example.com"})
    booking = standin.put(BOOKINGS, {"booking_id": "BK-1"})
    standin.associate(BOOKINGS, booking, CONTACTS, contact)
    got = raw.get(
        f"/crm/v3/objects/contacts/{contact}",
        params={"associations": f"{BOOKINGS},mock_exams,nonsense"},
    )
    assert got.status_code == 200
    assert got.json()["associations"] == {
        "bookings": {"results": [{"id": booking, "type": "contact_to_booking"}]}
    }
    assert "associations" not in raw.get(f"/crm/v3/objects/contacts/{contact}").json()


def test_association_batch_limit_is_2000(raw: Raw) -> None:
    inputs = [{"from": {"id": "1"}, "to": {"id": "2"}}] * 2001
    answer = raw.post(
        f"/crm/v4/associations/{BOOKINGS}/{CONTACTS}/batch/associate/default", {"inputs": inputs}
    )
    assert answer.status_code == 400


# ------------------------------------------------------------------ faults


def test_injected_5xx_is_answered_before_any_write(raw: Raw, standin: HubSpotStandIn) -> None:
    standin.set_faults(error_next=2, error_statuses=(503,))
    answers = [raw.post(UPSERT, {"inputs": [_upsert_input("BK-1")]}) for _ in range(3)]
    assert [a.status_code for a in answers] == [503, 503, 200]
    assert answers[2].json()["results"][0]["new"] is True
    assert [r.fault for r in standin.requests()] == ["error", "error", None]


def test_timeout_holds_the_request_then_applies_it(raw: Raw, standin: HubSpotStandIn) -> None:
    standin.set_faults(timeout_next=1, hold_s=0.6)
    started = time.monotonic()
    with pytest.raises(requests.ReadTimeout):
        raw.post(UPSERT, {"inputs": [_upsert_input("BK-1")]}, timeout=(1, 0.2))
    assert time.monotonic() - started < 0.5
    time.sleep(0.6)
    assert len(standin.objects(BOOKINGS)) == 1  # applied: the client just never heard


def test_lost_response_applies_the_write_and_drops_the_connection(
    raw: Raw, standin: HubSpotStandIn
) -> None:
    standin.set_faults(lost_next=1, paths=r"/batch/upsert$")
    with pytest.raises(requests.ConnectionError):
        raw.post(UPSERT, {"inputs": [_upsert_input("BK-1")]})
    assert len(standin.objects(BOOKINGS)) == 1
    (entry,) = standin.requests()
    assert entry.fault == "lost"
    # The path filter: other endpoints are untouched; the next upsert is answered.
    assert raw.post(READ, {"inputs": []}).status_code == 200
    assert (
        raw.post(UPSERT, {"inputs": [_upsert_input("BK-1")]}).json()["results"][0]["new"] is False
    )


def test_forced_conflict_fails_batches_naming_an_id(raw: Raw, standin: HubSpotStandIn) -> None:
    standin.set_faults(conflict_ids=frozenset({"BK-7"}))
    inputs = [_upsert_input(f"BK-{n}") for n in range(5, 9)]
    answer = raw.post(UPSERT, {"inputs": inputs})
    assert answer.status_code == 409
    _error_shape(answer.json(), "CONFLICT")
    assert standin.objects(BOOKINGS) == []
    assert raw.post(UPSERT, {"inputs": inputs[:2]}).status_code == 200


def test_latency_is_added(raw: Raw, standin: HubSpotStandIn) -> None:
    standin.set_faults(latency_ms=150)
    started = time.monotonic()
    raw.post(READ, {"inputs": []})
    assert time.monotonic() - started >= 0.15


def test_fault_rates_are_deterministic_under_a_seed(raw: Raw, standin: HubSpotStandIn) -> None:
    def run() -> list[int]:
        standin.reset()
        standin.set_faults(error_rate=0.4, seed=7)
        return [raw.post(READ, {"inputs": []}).status_code for _ in range(20)]

    first, second = run(), run()
    assert first == second
    assert 200 in first and any(s >= 500 for s in first)


def test_control_api_over_http(raw: Raw, standin: HubSpotStandIn) -> None:
    set_answer = raw.post("/__standin/faults", {"error_next": 1, "error_statuses": [502]})
    assert set_answer.json()["error_next"] == 1
    assert raw.post(READ, {"inputs": []}).status_code == 502
    assert (
        raw.post("/__standin/objects/bookings", {"properties": {"booking_id": "B"}}).status_code
        == 201
    )
    log = raw.get("/__standin/requests").json()["requests"]
    assert [(e["path"], e["status"], e["fault"]) for e in log] == [(READ, 502, "error")]
    assert isinstance(log[0]["at"], float)
    assert raw.post("/__standin/limits", {"per_interval": 1}).json()["per_interval"] == 1
    assert raw.post("/__standin/reset", {}).json() == {"ok": True}
    assert raw.get("/__standin/requests").json()["requests"] == []
    assert standin.objects(BOOKINGS) == []
    assert raw.post("/__standin/faults", {"nonsense": 1}).status_code == 400


def test_concurrent_upserts_never_duplicate(raw: Raw, standin: HubSpotStandIn) -> None:
    def upsert(n: int) -> int:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {TOKEN}"
        inputs = [_upsert_input(f"BK-{(n + k) % 30}", name=str(n)) for k in range(10)]
        answer = session.post(standin.url + UPSERT, json={"inputs": inputs}, timeout=HTTP_TIMEOUT_S)
        session.close()
        return answer.status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(upsert, range(60)))
    assert statuses == [200] * 60
    codes = sorted(o["properties"]["booking_id"] for o in standin.objects(BOOKINGS))
    assert codes == sorted(f"BK-{n}" for n in range(30))


# ------------------------------------------------------------------ the official SDK


def test_official_sdk_works_unchanged(standin: HubSpotStandIn) -> None:
    # The SDK ships no type information; these imports are checked by running them.
    from hubspot import HubSpot  # type: ignore[import-untyped]
    from hubspot.crm.associations.v4 import (  # type: ignore[import-untyped]
        AssociationSpec,
        BatchInputPublicAssociationMultiPost,
        BatchInputPublicDefaultAssociationMultiPost,
        PublicAssociationMultiPost,
        PublicDefaultAssociationMultiPost,
        PublicObjectId,
    )
    from hubspot.crm.contacts import PublicObjectSearchRequest  # type: ignore[import-untyped]
    from hubspot.crm.objects import (  # type: ignore[import-untyped]
        ApiException,
        BatchInputSimplePublicObjectBatchInputUpsert,
        BatchReadInputSimplePublicObjectId,
        SimplePublicObjectBatchInputUpsert,
        SimplePublicObjectId,
    )

    client = HubSpot(access_token=TOKEN, host=standin.url)
    contact = standin.put(
        CONTACTS, {"student_id": "S1", "email": "ann@example.com", "sj_credits": "2"}
    )

    found = client.crm.contacts.search_api.do_search(
        public_object_search_request=PublicObjectSearchRequest(
            filter_groups=[
                {
                    "filters": [
                        {"propertyName": "student_id", "operator": "EQ", "value": "S1"},
                        {"propertyName": "email", "operator": "EQ", "value": "ann@example.com"},
                    ]
                }
            ],
            properties=["sj_credits", "email"],
            sorts=["-hs_object_id"],
            limit=10,
        )
    )
    assert found.total == 1
    assert found.results[0].id == contact
    assert found.results[0].properties["sj_credits"] == "2"

    def upsert(code: str) -> Any:
        return client.crm.objects.batch_api.upsert(
            object_type=BOOKINGS,
            batch_input_simple_public_object_batch_input_upsert=BatchInputSimplePublicObjectBatchInputUpsert(
                inputs=[
                    SimplePublicObjectBatchInputUpsert(
                        id=code, id_property="booking_id", properties={"name": "Ann"}
                    )
                ]
            ),
        )

    first, second = upsert("BK-1"), upsert("BK-1")
    assert (first.results[0].new, second.results[0].new) == (True, False)
    booking = first.results[0].id
    assert first.results[0].created_at.year >= 2026  # ISO dates parse into datetimes

    read = client.crm.objects.batch_api.read(
        object_type=BOOKINGS,
        batch_read_input_simple_public_object_id=BatchReadInputSimplePublicObjectId(
            id_property="booking_id",
            properties=["name"],
            inputs=[SimplePublicObjectId(id="BK-1"), SimplePublicObjectId(id="BK-404")],
        ),
    )
    assert read.results[0].properties["name"] == "Ann"
    assert read.errors[0].category == "OBJECT_NOT_FOUND"  # 207 parses, errors included

    type_ids = client.crm.associations.v4.schema.definitions_api.get_all(BOOKINGS, CONTACTS)
    type_id = type_ids.results[0].type_id
    created = client.crm.associations.v4.batch_api.create(
        BOOKINGS,
        CONTACTS,
        batch_input_public_association_multi_post=BatchInputPublicAssociationMultiPost(
            inputs=[
                PublicAssociationMultiPost(
                    _from=PublicObjectId(id=booking),
                    to=PublicObjectId(id=contact),
                    types=[
                        AssociationSpec(
                            association_category="USER_DEFINED", association_type_id=type_id
                        )
                    ],
                )
            ]
        ),
    )
    assert created.results[0].from_object_id == booking
    exam = standin.put(MOCK_EXAMS, {"exam_date": "2026-05-01"})
    client.crm.associations.v4.batch_api.create_default(
        BOOKINGS,
        MOCK_EXAMS,
        batch_input_public_default_association_multi_post=BatchInputPublicDefaultAssociationMultiPost(
            inputs=[
                PublicDefaultAssociationMultiPost(
                    _from=PublicObjectId(id=booking), to=PublicObjectId(id=exam)
                )
            ]
        ),
    )
    page = client.crm.associations.v4.basic_api.get_page(CONTACTS, contact, BOOKINGS)
    assert [r.to_object_id for r in page.results] == [booking]
    fetched = client.crm.objects.basic_api.get_by_id(
        BOOKINGS, "BK-1", properties=["exam_date"], id_property="booking_id"
    )
    assert fetched.properties["exam_date"] == "2026-05-01"  # computed from the exam

    with pytest.raises(ApiException) as refused:
        client.crm.objects.batch_api.upsert(
            object_type=BOOKINGS,
            batch_input_simple_public_object_batch_input_upsert=BatchInputSimplePublicObjectBatchInputUpsert(
                inputs=[
                    SimplePublicObjectBatchInputUpsert(
                        id="BK-2", id_property="booking_id", properties={"location": "Calgary"}
                    )
                ]
            ),
        )
    assert refused.value.status == 400
    assert "READ_ONLY_VALUE" in refused.value.body

    standin.set_limits(per_interval=1, interval_ms=60_000)
    upsert("BK-3")
    with pytest.raises(ApiException) as limited:
        upsert("BK-4")
    assert limited.value.status == 429
    assert "TEN_SECONDLY_ROLLING" in limited.value.body


def test_official_sdk_reads_associations_archives_and_merges(standin: HubSpotStandIn) -> None:
    """A single GET with `associations` parses into SimplePublicObjectWithAssociations
    (`associations: {<type name>: {results: [{id, type}]}}`); the SDK's archive, batch
    archive, `archived=True` reads and contacts merge work unchanged."""
    # mypy reports the SDK's missing type information once, at the imports above.
    from hubspot import HubSpot
    from hubspot.crm.contacts import PublicMergeInput
    from hubspot.crm.objects import (
        ApiException,
        BatchInputSimplePublicObjectId,
        BatchReadInputSimplePublicObjectId,
        SimplePublicObjectId,
    )

    client = HubSpot(access_token=TOKEN, host=standin.url)
    contact = standin.put(CONTACTS, {"email": "ann@example.com"})
    exam = standin.put(MOCK_EXAMS, {"exam_date": "2026-05-01"})
    booking = standin.put(BOOKINGS, {"booking_id": "BK-1"})
    standin.associate(BOOKINGS, booking, CONTACTS, contact)
    standin.associate(BOOKINGS, booking, CONTACTS, contact, type_id=1289)  # labelled
    standin.associate(BOOKINGS, booking, MOCK_EXAMS, exam)

    fetched = client.crm.objects.basic_api.get_by_id(
        BOOKINGS, booking, associations=["contacts", MOCK_EXAMS, "deals"]
    )
    assert fetched.id == booking
    assert set(fetched.associations) == {"contacts", "mock_exams"}  # unknown types ignored
    assert [(r.id, r.type) for r in fetched.associations["contacts"].results] == [
        (contact, "booking_to_contact"),  # unlabelled
        (contact, "contact"),  # the portal's label "Contact" (1289)
    ]
    assert [r.id for r in fetched.associations["mock_exams"].results] == [exam]
    plain = client.crm.objects.basic_api.get_by_id(BOOKINGS, booking)
    assert plain.associations is None

    client.crm.objects.basic_api.archive(BOOKINGS, booking)
    with pytest.raises(ApiException) as gone:
        client.crm.objects.basic_api.get_by_id(BOOKINGS, booking)
    assert gone.value.status == 404
    shelved = client.crm.objects.basic_api.get_by_id(BOOKINGS, booking, archived=True)
    assert shelved.archived is True
    assert shelved.archived_at.year >= 2026
    read = client.crm.objects.batch_api.read(
        object_type=BOOKINGS,
        batch_read_input_simple_public_object_id=BatchReadInputSimplePublicObjectId(
            properties=["booking_id"], inputs=[SimplePublicObjectId(id=booking)]
        ),
        archived=True,
    )
    assert read.results[0].properties["booking_id"] == "BK-1"
    client.crm.objects.batch_api.archive(
        MOCK_EXAMS,
        batch_input_simple_public_object_id=BatchInputSimplePublicObjectId(
            inputs=[SimplePublicObjectId(id=exam)]
        ),
    )
    assert standin.objects(MOCK_EXAMS) == []

    other = standin.put(CONTACTS, {"email": "ann.b@example.com"})
    merged = client.crm.contacts.basic_api.merge(
        public_merge_input=PublicMergeInput(primary_object_id=contact, object_id_to_merge=other)
    )
    assert merged.id not in (contact, other)
    assert merged.properties["hs_merged_object_ids"] == f"{contact};{other}"
    assert client.crm.contacts.basic_api.get_by_id(other).id == merged.id


def test_the_portal_profile_refuses_calculated_properties_and_unknown_options(raw: Raw) -> None:
    """Booking student_id is calculated in the school's portal; attending_location is
    an enumeration of six; dominant_hand a boolean. An update or upsert with one bad
    input fails whole (400); only a create answers per input (207)."""
    created = raw.post(
        CREATE,
        {
            "inputs": [
                {"properties": {"booking_id": "a", "attending_location": "Calgary"}},
                {"properties": {"booking_id": "b", "student_id": "S1"}, "objectWriteTraceId": "1"},
                {
                    "properties": {"booking_id": "c", "dominant_hand": "Right"},
                    "objectWriteTraceId": "2",
                },
            ]
        },
    )
    assert created.status_code == 207
    codes = sorted(
        e["errors"][0]["code"] if "errors" in e else e["code"] for e in created.json()["errors"]
    )
    assert codes == ["INVALID_OPTION", "READ_ONLY_VALUE"]
    record_id = created.json()["results"][0]["id"]
    update = raw.post(
        UPDATE,
        {
            "inputs": [
                {
                    "id": record_id,
                    "properties": {"attending_location": "Mississauga - Lab D"},
                    "objectWriteTraceId": "3",
                }
            ]
        },
    )
    assert update.status_code == 400
    body = update.json()
    assert body["category"] == "VALIDATION_ERROR"
    assert body["errors"][0]["code"] == "INVALID_OPTION"
    assert body["errors"][0]["context"]["propertyName"] == ["attending_location"]
