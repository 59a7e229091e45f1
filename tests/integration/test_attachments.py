"""Attachments: stored when small enough, listed when not, served only to the inbox's people."""

from email.message import EmailMessage

import pytest
from sqlalchemy import select

from extensions import db
from models import Attachment, InboxMember
from tests.support.inbound import post_relay, work_inbound

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


@pytest.fixture
def app_config(app_config):
    return {**app_config, "ATTACHMENT_MAX_BYTES": "2048"}


def deliver(app, client, attachments):
    message = EmailMessage()
    message["From"], message["To"] = "Carla <carla@customer.example>", "support@example.com"
    message["Subject"], message["Message-ID"] = "Files", "<files@customer.example>"
    message.set_content("See attached.")
    for data, maintype, subtype, name in attachments:
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    post_relay(client, message.as_bytes())
    work_inbound(app)
    return {a.filename: a for a in db.session.scalars(select(Attachment))}


@pytest.fixture
def signed_in(auth, make_user, inbox):
    def sign_in(role="agent", member=True):
        user = make_user(role=role)
        if member:
            db.session.add(InboxMember(inbox_id=inbox.id, user_id=user.id))
            db.session.commit()
        auth.login(user.email, user.plain_password)
        return user

    return sign_in


def test_a_too_large_attachment_is_listed_with_the_reason(app, client, inbox, signed_in):
    rows = deliver(app, client, [(b"x" * 5000, "application", "zip", "big.zip")])
    big = rows["big.zip"]
    assert big.storage_key is None and big.size == 5000
    assert big.skipped_reason == "too large (5 KB) — raw email kept"
    signed_in()
    response = client.get(f"/attachments/{big.id}")
    assert response.status_code == 410
    assert "too large (5 KB) — raw email kept" in response.get_data(as_text=True)


def test_members_download_with_safe_headers(app, client, inbox, signed_in):
    rows = deliver(
        app,
        client,
        [
            (b"%PDF-1.4 test", "application", "pdf", "Rechnung März.pdf"),
            (PNG, "image", "png", "pixel.png"),
            (b"<svg onload=alert(1)></svg>", "image", "svg+xml", "logo.svg"),
        ],
    )
    signed_in()
    pdf = client.get(f"/attachments/{rows['Rechnung März.pdf'].id}")
    assert pdf.status_code == 200 and pdf.data == b"%PDF-1.4 test"
    assert pdf.headers["Content-Type"] == "application/octet-stream"
    assert pdf.headers["Content-Disposition"] == (
        "attachment; filename=\"Rechnung M_rz.pdf\"; filename*=UTF-8''Rechnung%20M%C3%A4rz.pdf"
    )
    assert pdf.headers["X-Content-Type-Options"] == "nosniff"
    png = client.get(f"/attachments/{rows['pixel.png'].id}")
    assert png.headers["Content-Type"] == "image/png" and png.data == PNG
    assert png.headers["Content-Disposition"].startswith("inline;")
    svg = client.get(f"/attachments/{rows['logo.svg'].id}")  # scriptable: never inline
    assert svg.headers["Content-Type"] == "application/octet-stream"
    assert svg.headers["Content-Disposition"].startswith("attachment;")
    assert "sandbox" in svg.headers["Content-Security-Policy"]


def test_agents_outside_the_inbox_get_404(app, client, inbox, signed_in):
    rows = deliver(app, client, [(b"secret", "text", "plain", "notes.txt")])
    signed_in(member=False)
    assert client.get(f"/attachments/{rows['notes.txt'].id}").status_code == 404


def test_admins_see_every_inbox(app, client, inbox, signed_in):
    rows = deliver(app, client, [(b"secret", "text", "plain", "notes.txt")])
    signed_in(role="admin", member=False)
    assert client.get(f"/attachments/{rows['notes.txt'].id}").data == b"secret"


def test_signed_out_visitors_are_sent_to_sign_in(app, client, inbox):
    rows = deliver(app, client, [(b"secret", "text", "plain", "notes.txt")])
    response = client.get(f"/attachments/{rows['notes.txt'].id}")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_unknown_attachment_is_404(client, signed_in):
    signed_in()
    assert client.get("/attachments/999999").status_code == 404
