"""The stand-in's property history (`propertiesWithHistory`), as HubSpot shows it: each
change with its value, time and source (an API write is its private app's INTEGRATION
change, an edit in the UI a CRM_UI change by a user), newest first."""

from __future__ import annotations

from local.standins.hubspot import CONTACTS, STANDIN_APP_ID, HubSpotStandIn
from tests.hubspot.conftest import Raw

READ = f"/crm/v3/objects/{CONTACTS}/batch/read"


def test_batch_read_and_single_get_show_who_changed_what_newest_first(
    standin: HubSpotStandIn, raw: Raw
) -> None:
    contact = standin.put(CONTACTS, {"email": "h@example.com", "cs_credits": 2})  # the UI
    update = raw.post(
        f"/crm/v3/objects/{CONTACTS}/batch/update",
        {"inputs": [{"id": contact, "properties": {"cs_credits": "1"}}]},
    )
    assert update.status_code == 200, update.text
    # Writing the value a property holds adds no entry.
    raw.post(
        f"/crm/v3/objects/{CONTACTS}/batch/update",
        {"inputs": [{"id": contact, "properties": {"cs_credits": "1"}}]},
    )

    answer = raw.post(
        READ,
        {
            "inputs": [{"id": contact}],
            "properties": ["cs_credits"],
            "propertiesWithHistory": ["cs_credits", "sj_credits"],
        },
    )

    assert answer.status_code == 200, answer.text
    [record] = answer.json()["results"]
    history = record["propertiesWithHistory"]
    assert history["sj_credits"] == []  # never set
    newest, oldest = history["cs_credits"]
    assert (newest["value"], newest["sourceType"], newest["sourceId"]) == (
        "1",
        "INTEGRATION",
        STANDIN_APP_ID,
    )
    assert (oldest["value"], oldest["sourceType"]) == ("2", "CRM_UI")
    assert oldest["sourceId"] == f"userId:{oldest['updatedByUserId']}"
    assert oldest["timestamp"] < newest["timestamp"] <= record["updatedAt"]
    single = raw.get(
        f"/crm/v3/objects/{CONTACTS}/{contact}", params={"propertiesWithHistory": "cs_credits"}
    )
    assert single.json()["propertiesWithHistory"] == {"cs_credits": history["cs_credits"]}
    plain = raw.post(READ, {"inputs": [{"id": contact}], "properties": ["cs_credits"]})
    assert "propertiesWithHistory" not in plain.json()["results"][0]


def test_a_write_by_another_app_carries_that_apps_id(standin: HubSpotStandIn, raw: Raw) -> None:
    contact = standin.put(CONTACTS, {"email": "p@example.com"})
    standin.put(CONTACTS, {"cs_credits": 4}, id=contact, source=("INTEGRATION", "77"))

    answer = raw.post(
        READ, {"inputs": [{"id": contact}], "propertiesWithHistory": ["cs_credits"]}
    ).json()

    [entry] = answer["results"][0]["propertiesWithHistory"]["cs_credits"]
    assert (entry["sourceType"], entry["sourceId"], entry["value"]) == ("INTEGRATION", "77", "4")


def test_a_malformed_history_request_is_refused(raw: Raw) -> None:
    answer = raw.post(READ, {"inputs": [], "propertiesWithHistory": "cs_credits"})

    assert answer.status_code == 400
    assert answer.json()["category"] == "VALIDATION_ERROR"
