"""The web UI: server-rendered pages for staff, on the same services and role checks as the
API. :func:`web_mount` gives the app factory what it mounts.

A plugin's pages (``kith_register_pages``) use the names below: ``render`` a template of the
plugin's folder (``kith_register_templates``) inside the web UI's layout, read a posted form
with ``form_of`` (and check it as the service's input with ``convert_form``), answer it with
``see_other``, translate with ``t`` (``translator(language)`` where no request is at hand) and
mark messages with ``N_``. A form with contacts' custom fields includes
``_custom_field_inputs.html`` (``declared``: ``declared_fields``; ``custom``: ``shown_fields``)
and reads them back with ``posted_fields`` and ``field_values``; reads and changes through
pages are audited under the ``WEB`` channel."""

from kith.web.i18n import N_, t, translator
from kith.web.mount import CSRF_FIELD, WebMount, web_mount
from kith.web.views.common import (
    WEB,
    convert_form,
    form_of,
    kith_of,
    render,
    see_other,
    signed_in,
)
from kith.web.views.field_inputs import (
    declared_fields,
    field_values,
    posted_fields,
    shown_fields,
)

__all__ = [
    "CSRF_FIELD",
    "N_",
    "WEB",
    "WebMount",
    "convert_form",
    "declared_fields",
    "field_values",
    "form_of",
    "kith_of",
    "posted_fields",
    "render",
    "see_other",
    "shown_fields",
    "signed_in",
    "t",
    "translator",
    "web_mount",
]
