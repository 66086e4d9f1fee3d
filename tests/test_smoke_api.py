"""The first thing a new user does: health, create a contact, find it by phone, log a note."""

from __future__ import annotations


async def test_health_names_the_database(kith_client, kith_engine):
    response = await kith_client.get("/api/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == ("sqlite" if kith_engine == "sqlite" else "postgresql")


async def test_contact_found_by_phone_typed_differently(kith_client, kith_auth):
    headers = await kith_auth("agent")
    created = await kith_client.post(
        "/api/contacts",
        json={"name": "Ada Lovelace", "phones": [{"number": "+44 20 7946 0018"}]},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    found = await kith_client.get(
        "/api/contacts", params={"q": "0044 (20) 7946-0018"}, headers=headers
    )
    assert [c["id"] for c in found.json()["items"]] == [created.json()["id"]]
    note = await kith_client.post(
        f"/api/contacts/{created.json()['id']}/interactions",
        json={"kind": "note", "summary": "met at the fair"},
        headers=headers,
    )
    assert note.status_code == 201
    timeline = await kith_client.get(
        f"/api/contacts/{created.json()['id']}/timeline", headers=headers
    )
    assert [i["summary"] for i in timeline.json()["items"]] == ["met at the fair"]
