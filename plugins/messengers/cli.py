"""``kith messengers connect CHANNEL`` and ``kith messengers send CONTACT``: thin, over the
channels' adapters and the message service. Whoever runs the ``kith`` command on the
installation acts as an administrator."""

from __future__ import annotations

import click
import msgspec
from kith import Actor, Conflict, InvalidInput, Kith
from kith.console import parse_id, print_json, run_with_kith
from kith.plugins.messengers.adapters import MessengerError
from kith.plugins.messengers.schemas import MessageIn, MessageOut
from kith.plugins.messengers.services import MessageService

CLI_ACTOR = Actor(kind="system", name="cli")


@click.group()
def messengers() -> None:
    """Conversations on Telegram, WhatsApp and other messengers."""


def webhook_url(kith: Kith, channel: str, given: str | None) -> str:
    if given:
        return given
    base = kith.settings.public_url
    if not base:
        raise InvalidInput(
            "Kith's public_url is not set: give the webhook address with --url", field="url"
        )
    return f"{base.rstrip('/')}/api/messengers/{channel}"


@messengers.command("connect")
@click.argument("channel")
@click.option("--url", help="The webhook address the provider calls (default: public_url's).")
def connect(channel: str, url: str | None) -> None:
    """Point CHANNEL's provider at Kith's webhook (Telegram: setWebhook with the secret token)."""

    async def work(kith: Kith) -> str:
        adapter = MessageService(kith).adapter(channel)
        try:
            return await adapter.connect(webhook_url(kith, channel, url))
        except MessengerError as exc:
            raise Conflict(exc.detail) from None

    click.echo(run_with_kith(work))


@messengers.command("send")
@click.argument("contact")
@click.option("--text", default="", help="The text of the message.")
@click.option("--template", "template", default=None, help="An approved template's name.")
@click.option("--language", default="en", show_default=True, help="The template's language.")
@click.option("--param", "params", multiple=True, help="A template parameter (repeatable).")
@click.option("--channel", default=None, help="The channel (default: the contact's last one).")
@click.option("--purpose", default=None, help="What a marketing message is for (consent).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a line.")
def send(
    contact: str,
    text: str,
    template: str | None,
    language: str,
    params: tuple[str, ...],
    channel: str | None,
    purpose: str | None,
    as_json: bool,
) -> None:
    """Queue a message to CONTACT (an id) on their messenger conversation."""
    contact_id = parse_id(contact, "contact")
    raw: dict[str, object] = {"text": text, "channel": channel, "purpose": purpose}
    if template:
        raw["template"] = {"name": template, "language": language, "params": list(params)}
    try:
        data = msgspec.convert(raw, MessageIn)
    except msgspec.ValidationError as exc:
        raise click.UsageError(str(exc)) from None

    async def work(kith: Kith) -> MessageOut:
        return await MessageService(kith).send(contact_id, data, CLI_ACTOR)

    queued = run_with_kith(work)
    if as_json:
        print_json(queued)
        return
    click.echo(f"queued  {queued.id} on {queued.channel}")
