"""The web forms plugin's tables: forms, their submissions, and consent awaiting confirmation."""

from __future__ import annotations

from kith import new_id
from piccolo.columns import JSON, UUID, Boolean, Integer, Text, Timestamptz, Varchar
from piccolo.table import Table


class WebForm(Table, tablename="webforms_form"):
    """A form; ``definition`` holds what :class:`FormCreate` describes."""

    id = Varchar(length=63, primary_key=True)
    title = Varchar(length=200)
    definition = JSON(default={})
    active = Boolean(default=True)
    # "api" (API or CLI) or "settings" ([[webforms.forms]] of kith.toml, rewritten at start).
    origin = Varchar(length=10, default="api")
    # Submissions of people on the suppression list, dropped unstored; only counted.
    dropped_suppressed = Integer(default=0)
    created_at = Timestamptz()
    updated_at = Timestamptz()


class WebFormSubmission(Table, tablename="webforms_submission"):
    """One accepted submission: its ``form_submission`` interaction and attribution. Campaign
    labels (utm_*) stay readable for the lead-source counts; what identifies or traces the
    person (addresses, URLs, click ids, user agent) is sealed under the contact's key."""

    kith_subject_column = "contact_id"

    id = UUID(primary_key=True, default=new_id)
    form_id = Varchar(length=63, index=True)
    contact_id = UUID(index=True)
    interaction_id = UUID(index=True)
    created_contact = Boolean(default=False)
    utm_source = Varchar(length=200, null=True, default=None)
    utm_medium = Varchar(length=200, null=True, default=None)
    utm_campaign = Varchar(length=200, null=True, default=None)
    utm_term = Varchar(length=200, null=True, default=None)
    utm_content = Varchar(length=200, null=True, default=None)
    gclid = Text(null=True, default=None, secret=True)
    yclid = Text(null=True, default=None, secret=True)
    page_url = Text(null=True, default=None, secret=True)
    referrer = Text(null=True, default=None, secret=True)
    client_address = Text(null=True, default=None, secret=True)
    user_agent = Text(null=True, default=None, secret=True)
    submitted_at = Timestamptz()


class WebFormOptIn(Table, tablename="webforms_opt_in"):
    """Consent ticked on a double opt-in form, waiting for the person to confirm it by the
    emailed link. Nothing is in the consent ledger until then; it expires unconfirmed."""

    kith_subject_column = "contact_id"

    id = UUID(primary_key=True, default=new_id)
    form_id = Varchar(length=63, index=True)
    contact_id = UUID(index=True)
    submission_id = UUID()
    interaction_id = UUID()
    # [{"name", "notice", "version"}] as shown: notice texts, no personal data.
    purposes = JSON(default=[])
    expires_at = Timestamptz(index=True)
    confirmed_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz()


WEBFORM_TABLES: list[type[Table]] = [WebForm, WebFormSubmission, WebFormOptIn]
