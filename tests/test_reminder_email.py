"""The email channel of reminders: each notification emailed once to its user through the core
mailer and a real local SMTP server, with links and no contact's name."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from _smtp import SmtpServer, start_server
from kith import (
    ContactCreate,
    ContactService,
    InteractionCreate,
    InteractionService,
    Kith,
    UserService,
    utcnow,
)
from kith.services.reminders import ReminderService
from kith.settings import Settings
from kith.testing import settings_for


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    server = start_server(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def kith_settings(kith_database_url: str, tmp_path: Path, smtp: SmtpServer) -> Settings:
    return settings_for(
        tmp_path / "kith-home", kith_database_url, reminders_email="true", **smtp.env()
    )


async def test_a_due_task_is_emailed_to_its_assignee_once(kith: Kith, smtp: SmtpServer) -> None:
    user = await UserService(kith).add("sam@staff.example", "agent")
    contact = (await ContactService(kith).create(ContactCreate(name="Ada Lovelace"))).id
    task, _ = await InteractionService(kith).log(
        contact,
        InteractionCreate(
            kind="task",
            summary="Call Ada about the invoice",
            due_at=utcnow() - dt.timedelta(minutes=1),
            assignee_id=user.id,
        ),
    )
    assert await kith.bus.publish_due_tasks() == 1
    reminders = ReminderService(kith)
    assert await reminders.deliver_pending() == 1
    assert await reminders.deliver_pending() == 0
    await kith.bus.drain()
    [sent] = smtp.mailbox.messages
    assert sent["To"] == "sam@staff.example" and sent["Subject"] == "A task is due"
    text = smtp.mailbox.text_of()
    assert f"/api/interactions/{task.id}" in text
    assert "Ada" not in text and "invoice" not in text
