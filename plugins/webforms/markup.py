"""HTML of the web forms: the form itself (hosted page and copy-paste snippet) and the plain
pages a browser without JavaScript sees after posting. Jinja2 escapes every value."""

from __future__ import annotations

import jinja2
from kith.plugins.webforms.schemas import HONEYPOT, TOKEN_FIELD, FormCreate

_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)

_FORM = _ENV.from_string(
    """<form class="kith-form" data-kith-form="{{ form.id }}" method="post" action="{{ action }}">
  <h2>{{ form.title }}</h2>
{%- for field in form.fields %}
  <p><label>{{ field.label or field.name }}{% if field.required %} *{% endif %}<br>
  {%- if field.type == "textarea" %}
  <textarea name="{{ field.name }}"{% if field.required %} required{% endif %}></textarea>
  {%- else %}
  <input name="{{ field.name }}" type="{{ input_types.get(field.type, 'text') }}"
   {%- if field.required %} required{% endif %}>
  {%- endif %}</label></p>
{%- endfor %}
{%- for purpose in form.purposes %}
  <p><label><input type="checkbox" name="consent_{{ purpose.name }}" value="yes"
   {%- if purpose.required %} required{% endif %}> {{ purpose.notice }}</label>
  <small>(notice {{ purpose.version }})</small></p>
{%- endfor %}
  <p style="position:absolute;left:-5000px" aria-hidden="true"><label>Leave empty
  <input name="{{ honeypot }}" tabindex="-1" autocomplete="off"></label></p>
  <input type="hidden" name="{{ token_field }}" value="{{ token }}">
  <input type="hidden" name="page_url" value="">
  <input type="hidden" name="referrer" value="">
  <p><button type="submit">Send</button></p>
  <p class="kith-form-reply" role="status"></p>
</form>"""
)

# Posts the form with fetch, shows the reply, and gets a fresh fill-time token on load.
_SCRIPT = _ENV.from_string(
    """<script>
(function () {
  var form = document.querySelector('form[data-kith-form="{{ form.id }}"]');
  if (!form || !window.fetch) return;
  var base = {{ base | tojson }};
  var params = new URLSearchParams(location.search);
  form.elements.page_url.value = location.href;
  form.elements.referrer.value = document.referrer;
  fetch(base + "/f/{{ form.id }}/token").then(function (r) { return r.json(); })
    .then(function (d) { form.elements["{{ token_field }}"].value = d.token; });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var reply = form.querySelector(".kith-form-reply");
    fetch(form.action + "?" + params.toString(), {
      method: "POST", body: new FormData(form), headers: {"Accept": "application/json"}
    }).then(function (r) { return r.json(); }).then(function (d) {
      if (d.ok && d.redirect) { location.href = d.redirect; return; }
      reply.textContent = d.ok ? d.message : (d.detail || d.title);
      if (d.ok) form.reset();
    }).catch(function () { reply.textContent = "Sending failed; please try again."; });
  });
})();
</script>"""
)

_PAGE = _ENV.from_string(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title></head>
<body>{{ body }}</body></html>"""
)


def form_html(form: FormCreate, base: str, token: str) -> str:
    return _FORM.render(
        form=form,
        input_types={"email": "email", "phone": "tel"},
        action=f"{base}/f/{form.id}",
        honeypot=HONEYPOT,
        token_field=TOKEN_FIELD,
        token=token,
    )


def snippet(form: FormCreate, base: str) -> str:
    """The copy-paste snippet: the form and its script; the token comes when the page loads."""
    script = _SCRIPT.render(form=form, base=base, token_field=TOKEN_FIELD)
    return form_html(form, base, "") + "\n" + script + "\n"


def hosted(form: FormCreate, base: str, token: str) -> str:
    body = form_html(form, base, token)
    body += _SCRIPT.render(form=form, base=base, token_field=TOKEN_FIELD)
    return _PAGE.render(title=form.title, body=jinja2.utils.markupsafe.Markup(body))


def message_page(title: str, text: str) -> str:
    body = _ENV.from_string("<h1>{{ title }}</h1><p>{{ text }}</p>").render(title=title, text=text)
    return _PAGE.render(title=title, body=jinja2.utils.markupsafe.Markup(body))
