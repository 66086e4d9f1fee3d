"""What the web forms hold about a person is exported, erased and sealed: the subject hooks
of the plugin over a real submission."""

from __future__ import annotations

import time

from kith import Kith
from kith.plugins.webforms import signing
from kith.plugins.webforms.schemas import FormCreate, FormField
from kith.plugins.webforms.service import FormService, Submission, SubmissionService
from kith.plugins.webforms.tables import WebFormSubmission
from kith.tables import Contact


async def submit(kith: Kith) -> None:
    await FormService(kith).create(
        FormCreate(id="f", title="F", fields=[FormField(name="email", maps_to="email")])
    )
    token = signing.fill_token(signing.signing_key(kith.settings.home), "f", time.time() - 10)
    await SubmissionService(kith).submit(
        "f",
        Submission(
            values={
                "email": "ada@example.com",
                "_kith_t": token,
                "page_url": "https://x.example/p",
            },
            client_address="203.0.113.77",
            user_agent="Agent/1",
            query={"utm_source": "ads", "gclid": "click-123"},
        ),
        "http://kith.test",
    )


async def test_a_submission_is_sealed_exported_and_erased(kith: Kith):
    await submit(kith)
    [row] = await WebFormSubmission.select().run()
    assert row["utm_source"] == "ads"
    # Sealed at rest: nothing readable of the address, the page or the click id.
    for column, value in (
        ("client_address", "203.0.113"),
        ("page_url", "x.example"),
        ("gclid", "click-123"),
    ):
        assert value not in (row[column] or ""), column

    [contact] = await Contact.select(Contact.id).run()
    assert kith.plugins is not None
    exported = await kith.plugins.call_async(
        "kith_subject_export", kith=kith, contact_id=contact["id"]
    )
    [section] = [r.value for r in exported if r.plugin == "webforms"]
    [item] = section.tables["webforms_submission"]
    assert item["client_address"] == "203.0.113.0"
    assert item["gclid"] == "click-123" and item["user_agent"] == "Agent/1"

    answers = await kith.plugins.call_async(
        "kith_subject_erase", kith=kith, contact_id=contact["id"]
    )
    outcomes = [o for r in answers if r.plugin == "webforms" for o in r.value]
    assert {(o.location, o.method, o.count) for o in outcomes} == {
        ("webforms_submission", "deleted", 1),
        ("webforms_opt_in", "not_present", 0),
    }
    assert await WebFormSubmission.count().run() == 0
