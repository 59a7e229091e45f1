"""An agent's answer to a notification email, sent from their own mail client to the
notification's Reply-To (agent+…@ the inbound domain, services/notifications/reply_address.py).

services/inbound_delivery.deliver hands over every email with such a recipient, and nothing
else handles it: it is never a customer's email. The answer is posted in the agent's name
through the composer's own service (services.replies.create_reply: a reply is queued and sent
by the send job with the conversation's continuity headers; "#note" on the first line makes a
private note, whose @mentions notify as in the workspace). Anything doubtful is refused with
the reason, which the Inbound log shows: a forged or expired address, a sender who is not the
agent, an agent who may no longer answer, an auto-reply or a bounce (never answered, so
nothing loops). An answer to a conversation that changed since the notification (the
customer wrote again, a colleague replied) is not sent but kept as the agent's draft, and the
agent is told by email why.

The posted message is linked to its InboundEmail, so the same email processed again (a job's
retry, an admin's reprocess) is recognised and never posted twice.
"""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import select

from extensions import db, get_settings
from mail.model import ParsedEmail
from mail.quoting import split_text
from models import Conversation, InboundEmail, Message, User, utcnow
from services import reply_drafts
from services.access import can_view_inbox
from services.inbound_delivery import DUPLICATE, Outcome
from services.notifications import reply_address
from services.notifications.reply_address import AgentReply, BadAddress
from services.replies import ReplyError, create_reply, reply_all_recipients
from services.reply_form import collisions
from services.routing import surviving
from services.system_mail import send_to_user
from services.timezones import user_zone

_NOTE = re.compile(r"#note\b[ \t:]*(.*)", re.I | re.S)
# Footers phones and mail apps add under what was typed ("Sent from my iPhone", "Get Outlook
# for iOS", "Von meinem iPhone gesendet", ...): a lead-in, then a device or app within two
# words, on a short last line.
_DEVICE = (
    r"(?:iPhone|iPad|Android|BlackBerry|Samsung|Galaxy|Huawei|Xiaomi|Pixel|mobile|smartphone|"
    r"phone|tablet|Mail|Outlook|Gmail|Yahoo|Proton\s?Mail|Spark|AOL|Zoho|Windows)"
)
_MOBILE_FOOTER = re.compile(
    r"Get Outlook for \w+|"
    r"(?:Sent (?:from|with|via)(?: my)?|Envoyé (?:de|depuis)(?: mon| ma)?|"
    r"(?:Von|Gesendet von|Gesendet mit)(?: meinem)?|Enviado (?:desde|de|do)(?: mi| meu| o)?|"
    r"(?:Verzonden|Verstuurd) (?:vanaf|met|van)(?: mijn)?|Inviato (?:da|dal)(?: mio)?|"
    rf"Skickat från(?: min)?) (?:\w+ ){{0,2}}{_DEVICE}\b[^\n]{{0,40}}",
    re.I,
)


def is_for_an_agent(parsed: ParsedEmail) -> bool:
    """True when a recipient is an agent reply address at the inbound domain (good or bad)."""
    return any(_read(address) is not None for address in parsed.recipients)


def post_agent_reply(inbound: InboundEmail, parsed: ParsedEmail) -> Outcome:
    """Post, hold or refuse the agent's answer; the outcome the Inbound log records."""
    posted = db.session.scalar(select(Message).where(Message.inbound_email_id == inbound.id))
    if posted is not None:  # processed before (a retry, a reprocess): posted once only
        return Outcome("delivered", DUPLICATE, posted.id, posted.inbox_id)
    checked = _checked(parsed)
    if isinstance(checked, Outcome):
        return checked
    reply, conversation, agent = checked
    inbox_id = conversation.inbox_id
    text = agent_text(parsed.text)
    note = _NOTE.fullmatch(text)
    kind, text = ("note", note.group(1).strip()) if note else ("reply", text)
    if not text:
        reason = f"empty {kind}: nothing was left above the quoted notification"
        return Outcome("refused", reason, inbox_id=inbox_id)
    changed = _changed_since(conversation, agent, reply.last_message_id)
    if changed is not None:
        why = _what_changed(changed, agent)
        _hold(conversation, agent, kind, text, why)
        return Outcome("delivered", f"held as a draft: {why}", inbox_id=inbox_id)
    try:
        message = _post(conversation, agent, kind, text, inbound.id)
    except ReplyError as exc:
        reason = f"{agent.name}'s {kind} by email was not accepted: {exc}"
        return Outcome("refused", reason, inbox_id=inbox_id)
    what = "a private note" if note else "a reply to the customer"
    reason = f"{agent.name}'s answer by email, posted as {what}"
    return Outcome("delivered", reason, message.id, inbox_id)


def _checked(parsed: ParsedEmail) -> tuple[AgentReply, Conversation, User] | Outcome:
    """The address, conversation and agent of an answer that may be posted, else the
    refusal: a bounce or auto-reply, a bad address, a sender or agent who may not answer."""
    automatic = _automatic(parsed)
    found = [_read(address) for address in parsed.recipients]
    replies = [one for one in found if isinstance(one, AgentReply)]
    if not replies:
        problem = next(one for one in found if isinstance(one, BadAddress))
        return Outcome("refused", automatic or str(problem))
    reply = replies[0]
    # A conversation merged since the notification: the answer goes where it lives on.
    conversation = surviving(db.session.get(Conversation, reply.conversation_id))
    if conversation is None:
        return Outcome("refused", automatic or "the conversation no longer exists")
    agent = db.session.get(User, reply.user_id)
    refusal = automatic or _refusal(parsed, agent, conversation)
    if refusal:
        return Outcome("refused", refusal, inbox_id=conversation.inbox_id)
    return reply, conversation, agent


def agent_text(text: str) -> str:
    """What the agent typed: the quoted notification and their signature cut off."""
    new, _quoted = split_text(text.replace("\r\n", "\n"))
    lines = new.split("\n")
    for i, line in enumerate(lines):
        if line.rstrip() == "--":  # RFC 3676's "-- " (some clients drop the space)
            lines = lines[:i]
            break
    while lines and (not lines[-1].strip() or _MOBILE_FOOTER.fullmatch(lines[-1].strip())):
        lines.pop()
    return "\n".join(lines).strip()


def _read(address: str) -> AgentReply | BadAddress | None:
    try:
        return reply_address.read(address)
    except BadAddress as exc:
        return exc


def _automatic(parsed: ParsedEmail) -> str | None:
    """Why this is no person's answer: a bounce or an auto-reply to a notification."""
    if parsed.bounce is not None:
        return f"a notification bounced: {parsed.bounce.diagnostic}"
    if parsed.auto_flag == "bounce":
        return f"a notification bounced: {parsed.auto_reason or 'a delivery failure report'}"
    if parsed.auto_flag is not None:
        return f"auto-reply to a notification ({parsed.auto_reason or parsed.auto_flag})"
    return None


def _refusal(parsed: ParsedEmail, agent: User | None, conversation: Conversation) -> str | None:
    if agent is None:
        return "the agent this address was made for no longer exists"
    sender = parsed.from_.address if parsed.from_ else ""
    if sender != agent.email.strip().lower():
        shown = sender or "no From address"
        return f"wrong sender: {shown} is not {agent.name}'s address, whose reply address this is"
    if not agent.active:
        return f"{agent.name} is deactivated"
    if not can_view_inbox(agent, conversation.inbox_id):
        return f"{agent.name} no longer has access to the {conversation.inbox.name} inbox"
    return None


def _changed_since(conversation: Conversation, agent: User, seen: int) -> Message | None:
    """The newest customer message, or a colleague's reply or note, after the message the
    notification showed; the agent's own and automatic messages do not count."""
    newer = [
        message
        for message in collisions(conversation.id, str(seen))
        if message.direction == "incoming" or message.sender_user_id not in (None, agent.id)
    ]
    return newer[-1] if newer else None


def _what_changed(message: Message, agent: User) -> str:
    at = _time(message.created_at, agent)
    if message.direction == "incoming":
        contact = message.conversation.contact
        return f"{contact.name or contact.email} wrote again at {at}"
    done = "replied" if message.direction == "outgoing" else "added a note"
    return f"{message.sender.name} {done} at {at}"


def _time(moment: datetime, agent: User) -> str:
    zone = user_zone(agent)
    there = moment.astimezone(zone)
    same_day = there.date() == utcnow().astimezone(zone).date()
    return there.strftime("%H:%M" if same_day else "%Y-%m-%d %H:%M")


def _post(
    conversation: Conversation, agent: User, kind: str, text: str, inbound_email_id: int
) -> Message:
    """As the composer sends it: a note, or a reply to the contact with the customer's other
    recipients in CC (the composer's prefilled To and CC); queued once committed, linked to
    the agent's email in the same commit."""
    if kind == "note":
        return create_reply(
            conversation, agent, text, private=True, inbound_email_id=inbound_email_id
        )
    to, cc = reply_all_recipients(conversation)
    return create_reply(
        conversation, agent, text, to=[to], cc=cc, inbound_email_id=inbound_email_id
    )


def _hold(conversation: Conversation, agent: User, kind: str, text: str, why: str) -> None:
    """Keep the answer as the agent's draft and tell them (SMTP errors raise: the job retries,
    and saving the same draft again changes nothing)."""
    reply_drafts.save(conversation.id, agent.id, kind=kind, text=text)
    number, subject = conversation.display_number, conversation.subject
    quoted = "\n".join(f"> {line}" if line else ">" for line in text.split("\n"))
    send_to_user(
        agent,
        f"Not sent: your {kind} to [#{number}] {subject}",
        f"Hello {agent.name},\n\n"
        f"Your {kind} by email to conversation #{number} ({subject}) was not sent: {why}, "
        "after the notification you answered.\n\n"
        "It is saved as your draft there: read what is new, then send it from the "
        "conversation.\n\n"
        f"{get_settings().app_url}/conversations/{conversation.id}\n\n"
        f"What you wrote:\n\n{quoted}\n",
    )
