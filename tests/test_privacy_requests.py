"""Subject requests: deadline arithmetic, the state machine, extensions, identity, four-eyes
approval, the executor seam, subjects found by email/phone, listing, CLI and API roles."""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import datetime as dt
import json
import re
import uuid
from typing import Any

import pytest
from _privacy_workflow import cli_env, configure_privacy, make_contact, make_user
from hypothesis import given
from hypothesis import strategies as st
from kith.actor import Role
from kith.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from kith.events import utcnow
from kith.privacy.requests import deadlines
from kith.privacy.requests import service as requests_module
from kith.privacy.requests.deadlines import add_months, describe_days_left, due_date
from kith.privacy.requests.executors import EXECUTORS, RequestJob
from kith.privacy.requests.service import RequestCreate, RequestService
from kith.privacy.requests.tables import RequestTransition, SubjectRequest
from kith.privacy.rights.outcomes import CertificateEntry, PlannedAction
from kith.runtime import Kith

D = dt.date

# -- deadline arithmetic -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("received", "months", "due"),
    [
        (D(2026, 1, 15), 0, D(2026, 2, 15)),
        (D(2026, 1, 31), 0, D(2026, 2, 28)),
        (D(2028, 1, 31), 0, D(2028, 2, 29)),  # leap year
        (D(2028, 1, 29), 0, D(2028, 2, 29)),
        (D(2027, 1, 29), 0, D(2027, 2, 28)),
        (D(2026, 3, 31), 0, D(2026, 4, 30)),
        (D(2026, 12, 31), 0, D(2027, 1, 31)),
        (D(2026, 12, 15), 0, D(2027, 1, 15)),
        (D(2026, 2, 28), 0, D(2026, 3, 28)),  # not "end of month → end of month"
        # Extensions count from receipt, not from the previous deadline:
        (D(2026, 1, 31), 1, D(2026, 3, 31)),
        (D(2026, 1, 31), 2, D(2026, 4, 30)),
        (D(2026, 11, 30), 2, D(2027, 2, 28)),
        (D(2027, 11, 30), 2, D(2028, 2, 29)),
        (D(2026, 12, 31), 2, D(2027, 3, 31)),
    ],
)
def test_due_date(received: dt.date, months: int, due: dt.date) -> None:
    assert due_date(received, months) == due


def test_more_than_two_months_of_extension_is_refused() -> None:
    with pytest.raises(ValueError, match="at most 2 months"):
        due_date(D(2026, 1, 1), 3)


@given(st.dates(min_value=D(1900, 1, 1), max_value=D(2300, 12, 31)), st.integers(0, 2))
def test_due_date_is_the_same_day_or_the_months_last_day(received: dt.date, ext: int) -> None:
    due = due_date(received, ext)
    months_apart = (due.year - received.year) * 12 + due.month - received.month
    assert months_apart == 1 + ext
    last = calendar.monthrange(due.year, due.month)[1]
    assert due.day == min(received.day, last)
    assert due > received
    # Never less than 28 days a month, never more than 31.
    assert 28 * (1 + ext) <= (due - received).days <= 31 * (1 + ext)


@given(st.dates(min_value=D(1900, 1, 1), max_value=D(2300, 12, 31)))
def test_extensions_only_ever_move_the_deadline_later(received: dt.date) -> None:
    dues = [due_date(received, ext) for ext in range(3)]
    assert dues == sorted(dues) and len(set(dues)) == 3


@given(st.dates(max_value=D(2300, 12, 31)), st.integers(0, 24), st.integers(0, 24))
def test_adding_months_never_overshoots(day: dt.date, a: int, b: int) -> None:
    assert add_months(add_months(day, a), b) <= add_months(day, a + b)


def test_days_left_reads_well() -> None:
    assert describe_days_left(3) == "3 days left"
    assert describe_days_left(1) == "1 day left"
    assert describe_days_left(0) == "due today"
    assert describe_days_left(-1) == "1 day overdue"
    assert describe_days_left(-12) == "12 days overdue"


def test_the_day_of_receipt_is_in_the_installations_time_zone() -> None:
    late_evening = dt.datetime(2026, 1, 31, 23, 30, tzinfo=dt.UTC)
    assert deadlines.local_date(late_evening, "UTC") == D(2026, 1, 31)
    assert deadlines.local_date(late_evening, "Europe/Moscow") == D(2026, 2, 1)


# -- a fake executor ---------------------------------------------------------------------------


class FakeExecutor:
    """Touches one location per call; fails once when asked, to show resuming."""

    def __init__(self, fail_first_run: bool = False) -> None:
        self.fail = fail_first_run
        self.runs = 0

    async def preview(self, job: RequestJob) -> list[PlannedAction]:
        return [PlannedAction(source="kith", location="kith_contact", method="deleted", count=1)]

    async def execute(self, job: RequestJob) -> list[CertificateEntry]:
        self.runs += 1
        done = job.progress.get("steps", 0)
        await job.checkpoint(steps=done + 1)
        if self.fail:
            self.fail = False
            raise RuntimeError("the disk was full")
        return [
            CertificateEntry(
                source="kith",
                location="kith_contact",
                method="deleted",
                count=1,
                detail=f"after {done + 1} attempt(s)",
            )
        ]


@pytest.fixture
def executor(monkeypatch: pytest.MonkeyPatch) -> FakeExecutor:
    fake = FakeExecutor()
    monkeypatch.setitem(EXECUTORS, "erasure", fake)
    monkeypatch.setitem(EXECUTORS, "access", fake)
    return fake


@pytest.fixture
def service(kith: Kith) -> RequestService:
    return RequestService(kith)


async def _new(kith: Kith, service: RequestService, kind: str = "erasure", **kw):
    contact = await make_contact(kith)
    creator = kw.pop("actor", None) or await make_user(kith)
    return await service.create(RequestCreate(kind=kind, contact_id=contact, **kw), creator)


# -- the state machine -------------------------------------------------------------------------


async def test_a_request_goes_from_received_to_done(kith, service, executor) -> None:
    officer = await make_user(kith)
    request = await _new(kith, service, actor=officer, note="asked by phone to be forgotten")
    assert request.state == "received"
    assert request.identity_status == "unverified"
    assert request.due_on == due_date(request.received_on)
    assert request.next_step == "verify the person's identity"

    request = await service.verify(request.id, "replied from the address on file", officer)
    assert request.identity_status == "verified"
    assert request.identity_method == "replied from the address on file"
    assert request.identity_verified_by == officer.ref
    request = await service.preview(request.id, officer)
    assert request.preview == [
        PlannedAction(source="kith", location="kith_contact", method="deleted", count=1)
    ]
    request = await service.approve(request.id, officer)  # four-eyes is off
    request = await service.run(request.id, officer)
    assert request.state == "done"
    assert request.closed_at is not None
    assert [e.location for e in request.outcome] == ["kith_contact"]

    detail = await service.detail(request.id)
    assert [(t.from_state, t.to_state) for t in detail.transitions] == [
        (None, "received"),
        ("received", "verified"),
        ("verified", "previewed"),
        ("previewed", "approved"),
        ("approved", "running"),
        ("running", "done"),
    ]
    assert {t.actor for t in detail.transitions} == {officer.ref}
    assert detail.request.note == "asked by phone to be forgotten"


@pytest.mark.parametrize(
    ("steps", "refused", "message"),
    [
        ([], "approve", "from received it can only become verified or rejected"),
        ([], "preview", "next: verify the person's identity"),
        ([], "run", "cannot become running"),
        (["verify"], "approve", "from verified it can only become previewed or rejected"),
        (["verify"], "run", "cannot become running"),
        (["verify", "preview"], "run", "next: approve it"),
        (["verify", "preview", "approve"], "preview", "next: run it"),
        (["verify", "preview", "approve", "run"], "reject", "already done"),
        (["verify", "preview", "approve", "run"], "run", "already done"),
        (["reject"], "verify", "already rejected"),
    ],
)
async def test_skipping_a_step_is_refused(kith, service, executor, steps, refused, message):
    officer = await make_user(kith)
    request = await _new(kith, service, actor=officer)

    async def do(step: str):
        if step == "verify":
            return await service.verify(request.id, "id card", officer)
        if step == "reject":
            return await service.reject(request.id, "not confirmed", officer)
        return await getattr(service, step)(request.id, officer)

    for step in steps:
        await do(step)
    before = await service.get(request.id)
    with pytest.raises(Conflict, match=message):
        await do(refused)
    after = await service.get(request.id)
    assert after.state == before.state
    transitions = await RequestTransition.count().where(RequestTransition.request == request.id)
    # One per step, plus "received"; a run is two (approved → running → done).
    assert transitions == 1 + len(steps) + steps.count("run")


async def test_a_preview_can_be_refreshed_before_approval(kith, service, executor) -> None:
    officer = await make_user(kith)
    request = await _new(kith, service, actor=officer)
    await service.verify(request.id, "id card", officer)
    await service.preview(request.id, officer)
    again = await service.preview(request.id, officer)
    assert again.state == "previewed"


async def test_rejection_needs_a_reason_and_closes(kith, service) -> None:
    officer = await make_user(kith)
    request = await _new(kith, service, kind="access", actor=officer)
    with pytest.raises(InvalidInput, match="reason cannot be empty"):
        await service.reject(request.id, "  ", officer)
    rejected = await service.reject(request.id, "identity could not be confirmed", officer)
    assert rejected.state == "rejected" and rejected.closed_at is not None
    detail = await service.detail(request.id)
    assert detail.transitions[-1].note == "identity could not be confirmed"


async def test_an_interrupted_run_resumes(kith, service, executor) -> None:
    officer = await make_user(kith)
    executor.fail = True
    request = await _new(kith, service, actor=officer)
    await service.verify(request.id, "id card", officer)
    await service.preview(request.id, officer)
    await service.approve(request.id, officer)
    with pytest.raises(RuntimeError, match="disk was full"):
        await service.run(request.id, officer)
    stuck = await service.get(request.id)
    assert stuck.state == "running"
    assert stuck.last_error == "RuntimeError: the disk was full"
    assert stuck.progress == {"steps": 1}
    assert stuck.next_step == "run it again to resume"

    done = await service.run(request.id, officer)
    assert done.state == "done"
    assert done.last_error is None
    assert done.outcome[0].detail == "after 2 attempt(s)"
    assert executor.runs == 2


class GatedExecutor(FakeExecutor):
    """Waits at a gate inside its first run, as a run does while it works (or when its
    process stops there)."""

    def __init__(self) -> None:
        super().__init__()
        self.started = 0
        self.reached = asyncio.Event()
        self.gate = asyncio.Event()

    async def execute(self, job: RequestJob) -> list[CertificateEntry]:
        self.started += 1
        if self.started == 1:
            self.reached.set()
            await self.gate.wait()
        return await super().execute(job)


@pytest.fixture
def gated(monkeypatch: pytest.MonkeyPatch) -> GatedExecutor:
    fake = GatedExecutor()
    monkeypatch.setitem(EXECUTORS, "erasure", fake)
    return fake


async def _approved(kith: Kith, service: RequestService) -> uuid.UUID:
    officer = await make_user(kith)
    request = await _new(kith, service, actor=officer)
    await service.verify(request.id, "id card", officer)
    await service.preview(request.id, officer)
    await service.approve(request.id, officer)
    return request.id


def _later(kith: Kith, seconds: float) -> None:
    """Move the clock leases are read against on by ``seconds``."""
    kith.bus.clock = lambda: utcnow() + dt.timedelta(seconds=seconds)


LEASE = 300.0  # the default request_lease_seconds


async def test_a_stopped_run_holds_its_request_until_its_lease_ends_then_the_worker_resumes(
    kith, service, gated
) -> None:
    request_id = await _approved(kith, service)
    first = asyncio.ensure_future(service.run(request_id))
    await gated.reached.wait()
    # While a run holds the request, nobody else carries it out: not a person, not a worker.
    with pytest.raises(Conflict, match="being carried out by another run"):
        await service.run(request_id)
    assert await service.resume_stopped() == []
    assert (await service.get(request_id)).next_step.startswith("none: it is being carried out")

    # Its process stops right there (the task is gone, its lease stays).
    first.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await first
    assert (await service.get(request_id)).state == "running"
    assert await service.resume_stopped() == []
    with pytest.raises(Conflict, match="being carried out by another run"):
        await service.run(request_id)

    _later(kith, LEASE + 1)
    assert await service.resume_stopped() == [request_id]
    done = await service.get(request_id)
    assert done.state == "done" and done.next_step is None
    # The stopped run never did its work; the resumed one did.
    assert (gated.started, gated.runs) == (2, 1)
    assert await service.resume_stopped() == []
    detail = await service.detail(request_id)
    assert [(t.to_state, t.actor) for t in detail.transitions][-1] == ("done", "system")


async def test_a_failed_run_is_resumed_by_the_worker_once_per_lease(
    kith, service, executor
) -> None:
    executor.fail = True
    request_id = await _approved(kith, service)
    with pytest.raises(RuntimeError, match="disk was full"):
        await service.run(request_id)
    # The worker waits a lease before trying again; a person need not.
    assert await service.resume_stopped() == []
    executor.fail = True
    with pytest.raises(RuntimeError, match="disk was full"):
        await service.run(request_id)
    assert executor.runs == 2

    _later(kith, LEASE + 1)
    executor.fail = True
    assert await service.resume_stopped() == [request_id]  # fails again, and is logged
    assert executor.runs == 3
    assert await service.resume_stopped() == []
    assert (await service.get(request_id)).state == "running"

    _later(kith, 2 * LEASE + 2)
    assert await service.resume_stopped() == [request_id]
    assert executor.runs == 4
    done = await service.get(request_id)
    assert done.state == "done" and done.last_error is None


async def test_a_run_that_lost_its_lease_stops_and_the_run_that_took_it_finishes(
    kith, service, gated
) -> None:
    # A short lease, so that the first run checks it soon (a third of it).
    configure_privacy(kith, request_lease_seconds=3)
    request_id = await _approved(kith, service)
    stalled = asyncio.ensure_future(service.run(request_id))
    await gated.reached.wait()
    # The first run stalls for longer than its lease: the worker takes the request over.
    # (Should the stalled run renew just before, its lease runs out a little later.)
    for step in range(1, 100):
        _later(kith, 10 * step)
        if await service.resume_stopped() == [request_id]:
            break
    assert (await service.get(request_id)).state == "done"
    with pytest.raises(Conflict, match="taken over by another run"):
        await stalled
    assert (gated.started, gated.runs) == (2, 1)
    transitions = await RequestTransition.count().where(
        (RequestTransition.request == request_id) & (RequestTransition.to_state == "done")
    )
    assert transitions == 1


async def test_the_history_cannot_be_rewritten_in_sql(kith, service) -> None:
    request = await _new(kith, service)
    for statement in (
        "UPDATE kith_subject_request_transition SET actor = 'someone else'",
        "DELETE FROM kith_subject_request_transition",
    ):
        with pytest.raises(Exception, match="append-only"):
            await RequestTransition.raw(statement).run()
    assert await RequestTransition.count().where(RequestTransition.request == request.id) == 1


# -- four eyes ---------------------------------------------------------------------------------


async def test_four_eyes_refuses_self_approval(kith, service, executor) -> None:
    configure_privacy(kith, four_eyes=True)
    first = await make_user(kith)
    second = await make_user(kith)
    request = await _new(kith, service, actor=first)
    await service.verify(request.id, "id card", first)
    await service.preview(request.id, first)
    with pytest.raises(PermissionDenied, match="different compliance user"):
        await service.approve(request.id, first)
    assert (await service.get(request.id)).state == "previewed"

    approved = await service.approve(request.id, second)
    assert approved.state == "approved"
    assert approved.approved_by == second.ref


async def test_four_eyes_also_excludes_whoever_previewed(kith, service, executor) -> None:
    configure_privacy(kith, four_eyes=True)
    creator, previewer, approver = (
        await make_user(kith),
        await make_user(kith),
        await make_user(kith),
    )
    request = await _new(kith, service, actor=creator)
    await service.verify(request.id, "id card", creator)
    await service.preview(request.id, previewer)
    with pytest.raises(PermissionDenied):
        await service.approve(request.id, previewer)
    with pytest.raises(PermissionDenied, match="named compliance user"):
        await service.approve(request.id)  # the system, e.g. the CLI without --as
    agent = await make_user(kith, Role.AGENT)
    with pytest.raises(PermissionDenied):
        await service.approve(request.id, agent)
    assert (await service.approve(request.id, approver)).approved_by == approver.ref


async def test_without_four_eyes_one_officer_may_do_it_all(kith, service, executor) -> None:
    officer = await make_user(kith)
    request = await _new(kith, service, actor=officer)
    await service.verify(request.id, "id card", officer)
    await service.preview(request.id, officer)
    assert (await service.approve(request.id, officer)).state == "approved"


# -- extensions --------------------------------------------------------------------------------


async def test_extensions_add_up_to_two_months_with_reasons(kith, service) -> None:
    officer = await make_user(kith)
    received = dt.datetime(2026, 1, 31, 12, tzinfo=dt.UTC)
    request = await _new(kith, service, actor=officer, received_at=received)
    assert request.due_on == D(2026, 2, 28)
    # Pretend today is still within the first month.
    service.today = lambda: D(2026, 2, 10)  # type: ignore[method-assign]

    with pytest.raises(InvalidInput, match="reason cannot be empty"):
        await service.extend(request.id, 1, "", officer)
    with pytest.raises(InvalidInput, match="1 or 2 months"):
        await service.extend(request.id, 3, "complex", officer)
    extended = await service.extend(request.id, 1, "many systems to search", officer)
    assert extended.due_on == D(2026, 3, 31) and extended.extension_months == 1
    extended = await service.extend(request.id, 1, "a second, related request", officer)
    assert extended.due_on == D(2026, 4, 30) and extended.extension_months == 2
    with pytest.raises(Conflict, match="extended by 2 months in total; this one has 0 months"):
        await service.extend(request.id, 1, "still more", officer)

    detail = await service.detail(request.id)
    assert [(e.months, e.reason, e.due_before, e.due_after) for e in detail.extensions] == [
        (1, "many systems to search", D(2026, 2, 28), D(2026, 3, 31)),
        (1, "a second, related request", D(2026, 3, 31), D(2026, 4, 30)),
    ]


async def test_an_overdue_or_closed_request_cannot_be_extended(kith, service) -> None:
    officer = await make_user(kith)
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=70)
    request = await _new(kith, service, actor=officer, received_at=old)
    assert request.overdue and request.days_left < 0
    with pytest.raises(Conflict, match="already overdue"):
        await service.extend(request.id, 2, "too late", officer)
    closed = await service.reject(request.id, "withdrawn by the person", officer)
    with pytest.raises(Conflict, match="rejected; it needs no extension"):
        await service.extend(closed.id, 1, "x", officer)


# -- subjects ----------------------------------------------------------------------------------


async def test_the_subject_is_found_by_email_or_phone_through_the_blind_index(kith, service):
    contact = await make_contact(kith, email="Ada@Example.COM", phone="+44 20 7946 0018")
    by_email = await service.create(RequestCreate(kind="access", email=" ada@example.com "))
    assert by_email.contact_id == contact and by_email.subject_kind == "email"
    by_phone = await service.create(RequestCreate(kind="access", phone="020 7946 0018"))
    assert by_phone.contact_id == contact and by_phone.subject_kind == "phone"
    unknown = await service.create(RequestCreate(kind="access", email="nobody@example.com"))
    assert unknown.contact_id is None
    row = await SubjectRequest.select().where(SubjectRequest.id == unknown.id).first()
    # Only a keyed hash is kept, under a key of its own: it cannot be joined with the contacts'
    # blind indexes.
    assert re.fullmatch(r"[0-9a-f]{64}", row["subject_lookup"])
    assert row["subject_lookup"] != kith.protector.lookup_key("email", "nobody@example.com")
    others = {k: v for k, v in row.items() if k != "subject_lookup"}
    assert "nobody" not in repr(others)
    # A subject who is a contact is named by the contact id alone.
    for known in (by_email, by_phone):
        row = await SubjectRequest.select().where(SubjectRequest.id == known.id).first()
        assert row["subject_lookup"] is None


async def test_bad_subjects_are_refused(kith, service) -> None:
    contact = await make_contact(kith, email="x@example.com")
    with pytest.raises(InvalidInput, match="exactly one of"):
        await service.create(RequestCreate(kind="access"))
    with pytest.raises(InvalidInput, match="exactly one of"):
        await service.create(
            RequestCreate(kind="access", contact_id=contact, email="x@example.com")
        )
    with pytest.raises(NotFound):
        await service.create(RequestCreate(kind="access", contact_id=uuid.uuid4()))
    with pytest.raises(InvalidInput, match="not a valid email"):
        await service.create(RequestCreate(kind="access", email="not an address"))
    with pytest.raises(InvalidInput, match="future"):
        await service.create(
            RequestCreate(
                kind="access",
                contact_id=contact,
                received_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=2),
            )
        )


# -- listing -----------------------------------------------------------------------------------


async def test_requests_are_listed_overdue_first(kith, service) -> None:
    now = dt.datetime.now(dt.UTC)
    fresh = await _new(kith, service, kind="access", received_at=now)
    overdue = await _new(kith, service, kind="erasure", received_at=now - dt.timedelta(days=45))
    middle = await _new(kith, service, kind="restriction", received_at=now - dt.timedelta(days=20))
    closed = await _new(kith, service, kind="access", received_at=now - dt.timedelta(days=90))
    await service.reject(closed.id, "duplicate")

    listed = await service.list()
    assert [r.id for r in listed] == [overdue.id, middle.id, fresh.id]
    assert listed[0].overdue and listed[0].days_left < 0
    assert not listed[2].overdue
    everything = await service.list(include_closed=True)
    assert everything[-1].id == closed.id and not everything[-1].overdue
    assert [r.id for r in await service.list(kind="restriction")] == [middle.id]
    assert [r.id for r in await service.list(state="rejected")] == [closed.id]
    with pytest.raises(InvalidInput):
        await service.list(state="lost")


def test_cli_lists_requests_with_days_left(kith_database_url, tmp_path) -> None:
    runner, env = cli_env(kith_database_url, tmp_path / "kith-home")
    from kith.cli import main

    created = runner.invoke(
        main, ["privacy", "requests", "new", "access", "--email", "ada@example.com"], env=env
    )
    assert created.exit_code == 0, created.output
    old = runner.invoke(
        main,
        [
            "privacy",
            "requests",
            "new",
            "erasure",
            "--email",
            "bob@example.com",
            "--received",
            (dt.date.today() - dt.timedelta(days=40)).isoformat(),
        ],
        env=env,
    )
    assert old.exit_code == 0, old.output
    listed = runner.invoke(main, ["privacy", "requests"], env=env)
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.strip().splitlines()
    assert lines[0].split()[:3] == ["id", "type", "state"]
    assert "erasure" in lines[1] and "overdue" in lines[1]
    assert "access" in lines[2] and "left" in lines[2]

    request_id = lines[2].split()[0]
    skipped = runner.invoke(main, ["privacy", "requests", "approve", request_id], env=env)
    assert skipped.exit_code == 1
    assert "cannot become approved" in skipped.stderr
    verified = runner.invoke(
        main, ["privacy", "requests", "verify", request_id, "--method", "id card"], env=env
    )
    assert verified.exit_code == 0, verified.output
    shown = runner.invoke(main, ["privacy", "requests", "show", request_id], env=env)
    assert "received" in shown.stdout and "verified" in shown.stdout


def test_cli_rectify_sets_corrections_of_custom_fields_checked_when_set(
    kith_database_url, tmp_path
) -> None:
    from _privacy_workflow import run_services
    from kith import ContactCreate, ContactService, FieldCreate, FieldService
    from kith.cli import main
    from kith.privacy.rights.rectification import RectificationService

    runner, env = cli_env(kith_database_url, tmp_path / "kith-home")

    async def setup(kith: Kith) -> uuid.UUID:
        fields = FieldService(kith)
        await fields.add(FieldCreate(name="passport", type="text", personal=True))
        await fields.add(FieldCreate(name="seats", type="number"))
        await fields.add(
            FieldCreate(name="channels", type="multi_choice", choices=["email", "phone", "sms"])
        )
        created = await ContactService(kith).create(
            ContactCreate(name="Ada Lovelace", fields={"passport": "X-1", "seats": 3})
        )
        return created.id

    contact = run_services(env, setup)
    created = runner.invoke(
        main,
        ["privacy", "requests", "new", "rectification", "--contact", str(contact), "--json"],
        env=env,
    )
    assert created.exit_code == 0, created.output
    request_id = json.loads(created.stdout)["id"]
    verified = runner.invoke(
        main, ["privacy", "requests", "verify", request_id, "--method", "id card"], env=env
    )
    assert verified.exit_code == 0, verified.output

    def rectify(*args: str):
        return runner.invoke(main, ["privacy", "rectify", request_id, *args], env=env)

    # A value that does not fit its field is refused, naming it, and nothing is kept.
    bad = rectify("--family-name", "King", "--field", "seats=many")
    assert bad.exit_code == 1 and "fields.seats" in bad.stderr
    assert rectify("--field", "seats").exit_code == 2
    assert "is given twice" in rectify("--field", "seats=1", "--field", "seats=2").output

    async def stored(kith: Kith) -> Any:
        return await RectificationService(kith).patch_of(uuid.UUID(request_id))

    assert run_services(env, stored) is None

    done = rectify(
        "--family-name", "King", "--field", "passport=K-2", "--field", "seats=",
        "--field", "channels=sms, email",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert done.stdout.splitlines()[0] == (
        f"request {request_id} will correct: family_name, fields.channels, fields.passport, "
        "fields.seats"
    )
    patch = run_services(env, stored)
    # Kept as the contact will hold them: the choices in their declared order, seats removed.
    assert patch.fields == {"passport": "K-2", "seats": None, "channels": ["email", "sms"]}


# -- HTTP --------------------------------------------------------------------------------------


async def test_request_api_for_compliance_not_for_agents(kith, kith_client, kith_auth, executor):
    contact = await make_contact(kith, email="ada@example.com")
    officer = await kith_auth(Role.COMPLIANCE)
    agent = await kith_auth(Role.AGENT)
    assert (await kith_client.get("/api/privacy/requests", headers=agent)).status_code == 403
    refused = await kith_client.post(
        "/api/privacy/requests", json={"kind": "access", "email": "ada@example.com"}, headers=agent
    )
    assert refused.status_code == 403

    created = await kith_client.post(
        "/api/privacy/requests",
        json={"kind": "access", "email": "ada@example.com"},
        headers=officer,
    )
    assert created.status_code == 201, created.text
    request = created.json()
    assert request["contact_id"] == str(contact)
    url = f"/api/privacy/requests/{request['id']}"
    assert created.headers["location"] == url

    skipped = await kith_client.post(f"{url}/approve", headers=officer)
    assert skipped.status_code == 409
    assert "cannot become approved" in skipped.json()["detail"]
    steps = [
        ("verify", {"method": "replied from the address on file"}),
        ("extend", {"months": 1, "reason": "many systems"}),
        ("preview", None),
        ("approve", None),
        ("run", None),
    ]
    for step, body in steps:
        answer = await kith_client.post(f"{url}/{step}", json=body, headers=officer)
        assert answer.status_code == 200, (step, answer.text)
        assert (await kith_client.post(f"{url}/{step}", headers=agent)).status_code == 403
    detail = (await kith_client.get(url, headers=officer)).json()
    assert detail["request"]["state"] == "done"
    assert detail["request"]["extension_months"] == 1
    assert len(detail["transitions"]) == 6
    listed = await kith_client.get(
        "/api/privacy/requests", params={"include_closed": "true"}, headers=officer
    )
    assert [r["id"] for r in listed.json()] == [request["id"]]
    certificate = await kith_client.get(f"{url}/certificate", headers=officer)
    assert certificate.status_code == 200
    assert (await kith_client.get(f"{url}/certificate", headers=agent)).status_code == 403


def test_module_exports_the_executor_seam() -> None:
    assert requests_module.REQUEST_KINDS == (
        "access",
        "portability",
        "rectification",
        "restriction",
        "erasure",
    )
    # Every type of request has its executor.
    assert set(EXECUTORS) == set(requests_module.REQUEST_KINDS)


async def test_free_text_is_encrypted_under_the_subjects_key(kith, service) -> None:
    from kith.privacy.encryption.plaintext_migration import leftover
    from kith.privacy.encryption.protector import protector_of
    from kith.privacy.encryption.shredding import shred

    officer = await make_user(kith)
    unknown = await service.create(
        RequestCreate(kind="access", email="nobody@example.com", note="Jane Roe wrote by letter"),
        officer,
    )
    known = await _new(kith, service, actor=officer, note="Ada asked by phone")
    await service.reject(known.id, "Ada withdrew it", officer)
    raw = repr(await SubjectRequest.select()) + repr(await RequestTransition.select())
    for plaintext in ("Jane Roe", "Ada asked", "Ada withdrew"):
        assert plaintext not in raw
    assert (await service.get(unknown.id)).note == "Jane Roe wrote by letter"
    assert all(count == 0 for count in (await leftover(protector_of(kith))).values())

    await shred(kith, known.contact_id)
    detail = await service.detail(known.id)
    assert detail.request.note == "[erased]"
    assert detail.transitions[-1].note == "[erased]"
    assert detail.request.state == "rejected"  # the request itself stays, as evidence


async def test_free_text_that_does_not_decrypt_is_an_error_not_erased(
    kith, service, monkeypatch
) -> None:
    from kith.privacy.encryption.errors import PrivacyError
    from kith.privacy.encryption.protector import protector_of

    officer = await make_user(kith)
    first = await _new(kith, service, actor=officer, note="Ada asked by phone")
    second = await _new(kith, service, actor=officer, note="Grace asked by letter")
    # Tampering: a sealed note copied onto another request does not open there.
    [stored] = await SubjectRequest.select(SubjectRequest.note).where(SubjectRequest.id == first.id)
    await SubjectRequest.update({SubjectRequest.note: stored["note"]}).where(
        SubjectRequest.id == second.id
    )
    with pytest.raises(PrivacyError):
        await service.get(second.id)

    # The key service is unreachable: an error to retry, not a person erased.
    keys = protector_of(kith).keys

    async def unreachable(*args: object) -> bytes:
        raise ConnectionError("the key service does not answer")

    keys.cache.clear()
    monkeypatch.setattr(keys.provider, "unwrap", unreachable)
    with pytest.raises(ConnectionError):
        await service.get(first.id)
    monkeypatch.undo()
    assert (await service.get(first.id)).note == "Ada asked by phone"


def test_cli_four_eyes_needs_a_second_named_officer(kith_database_url, tmp_path) -> None:
    from _privacy_workflow import run_services
    from kith.cli import main
    from kith.services.users import UserService

    home = tmp_path / "kith-home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "kith.toml").write_text("[privacy]\nfour_eyes = true\n")
    runner, env = cli_env(kith_database_url, home)

    async def setup(kith: Kith) -> uuid.UUID:
        users = UserService(kith)
        await users.add("first@firm.example", "compliance")
        await users.add("second@firm.example", "compliance")
        await users.add("agent@firm.example", "agent")
        return await make_contact(kith)

    contact = run_services(env, setup)

    def kith_cmd(*args: str, user: str | None = None):
        extra = {"KITH_USER": user} if user else {}
        return runner.invoke(main, ["privacy", "requests", *args], env={**env, **extra})

    created = kith_cmd(
        "new", "erasure", "--contact", str(contact), "--json", user="first@firm.example"
    )
    assert created.exit_code == 0, created.output
    request_id = json.loads(created.stdout)["id"]
    assert (
        kith_cmd("verify", request_id, "--method", "id", user="first@firm.example").exit_code == 0
    )
    EXECUTORS["erasure"], real = FakeExecutor(), EXECUTORS["erasure"]
    try:
        previewed = kith_cmd("preview", request_id, user="first@firm.example")
        assert previewed.exit_code == 0, previewed.output
        mine = kith_cmd("approve", request_id, user="first@firm.example")
        assert mine.exit_code == 1 and "different compliance user" in mine.stderr
        anonymous = kith_cmd("approve", request_id)
        assert anonymous.exit_code == 1 and "--as EMAIL" in anonymous.stderr
        agent = kith_cmd("approve", request_id, user="agent@firm.example")
        assert agent.exit_code == 1 and "needs a compliance user" in agent.stderr
        approved = kith_cmd("approve", request_id, "--as", "second@firm.example")
        assert approved.exit_code == 0, approved.output
        ran = kith_cmd("run", request_id, user="second@firm.example")
        assert ran.exit_code == 0, ran.output
        assert "done" in ran.stdout
    finally:
        EXECUTORS["erasure"] = real
