"""The HubSpot stand-in as `./run dev` runs it: on a fixed local port, with a few
students who exist only in HubSpot, so that a first login (PostgreSQL does not know
the student, HubSpot does) can be tried by hand:

    HSDEMO1 / hsdemo1@example.com  ...  HSDEMO5 / hsdemo5@example.com

The token is made up per run and handed to the API server through the environment,
like a real private-app token would be.
"""

from __future__ import annotations

import secrets

from local.standins.hubspot import HubSpotStandIn, serve

# Below the ephemeral port range, apart from the other local servers (see stack.py).
DEFAULT_PORT = 18090
HUBSPOT_ONLY_STUDENTS = 5


def start(port: int = DEFAULT_PORT) -> HubSpotStandIn:
    standin = serve(f"local-{secrets.token_hex(16)}", port=port)
    for n in range(1, HUBSPOT_ONLY_STUDENTS + 1):
        standin.put(
            "0-1",
            {
                "student_id": f"HSDEMO{n}",
                "email": f"hsdemo{n}@example.com",
                "firstname": "HubSpot",
                "lastname": f"Only {n}",
                "sj_credits": "2",
                "cs_credits": "2",
                "sjmini_credits": "1",
                "mock_discussion_token": "1",
                "shared_mock_credits": "1",
            },
        )
    return standin
