"""Nothing refused unseen (issue 22): every post an ingress refuses is recorded with its
time, ingress, client, status and reason, shown in the Inbound log and on the System page and
counted by `flask doctor`; an over-size message from SendGrid (which drops a 4xx without
retrying) is kept as "too large" instead of answered 413."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from extensions import db, get_settings
from jobs.sweeps import incinerate_processed_raw_emails
from models import InboundEmail, IngressRefusal, Message, utcnow
from tests.support.inbound import work_inbound
from tests.support.ingress_requests import (
    MAILGUN_KEY,
    MAILGUN_URL,
    RELAY_URL,
    SENDGRID_URL,
    basic_auth,
    inbound_job_ids,
    inbound_rows,
    mailgun_signed,
    post_form,
    stored_keys,
)
from tests.support.workspace import Browser, make_team

RAW = (
    b"From: Carla Customer <carla@customer.example>\r\n"
    b"To: support@example.com\r\n"
    b"Subject: Printer on fire\r\n"
    b"Message-ID: <refused.1@customer.example>\r\n"
    b"\r\n"
    b"It is still burning.\r\n"
)
BIG = RAW + b"x" * 9000 + b"\r\n"
SMALL_LIMIT = {"INBOUND_EMAIL_MAX_BYTES": "4096"}


@pytest.fixture
def app_config(app_config, extra_settings):
    return {
        **app_config,
        "INBOUND_EMAIL_SERVICE": "relay,sendgrid,mailgun",
        "MAILGUN_INGRESS_SIGNING_KEY": MAILGUN_KEY,
        **extra_settings,
    }


@pytest.fixture
def admin(client, auth, inbox, make_user):
    return Browser(client, auth).login(make_team(inbox, make_user).ana)


def refusals() -> list[IngressRefusal]:
    db.session.expire_all()
    return list(db.session.scalars(select(IngressRefusal).order_by(IngressRefusal.id)))


def relay(client, raw=RAW, content_type="message/rfc822", headers=None):
    return client.post(
        RELAY_URL, data=raw, content_type=content_type, headers=headers or basic_auth()
    )


def test_a_wrong_password_is_recorded_without_reading_the_body_and_repeats_are_counted(client):
    for _ in range(3):
        assert relay(client, headers=basic_auth("guess")).status_code == 401

    [row] = refusals()
    assert (row.ingress, row.status, row.reason, row.count) == (
        "relay",
        401,
        "invalid credentials",
        3,
    )
    assert row.client_address == "127.0.0.1"
    assert row.size == len(RAW)
    # never the body of an unauthenticated post
    assert (row.from_address, row.subject, row.message_id) == (None, None, None)
    assert inbound_rows() == []


def test_an_authenticated_refusal_keeps_the_messages_headers(client):
    assert relay(client, content_type="text/plain").status_code == 415

    [row] = refusals()
    assert (row.status, row.reason) == (415, "Content-Type must be message/rfc822, not text/plain")
    assert row.from_address == "Carla Customer <carla@customer.example>"
    assert row.to_addresses == "support@example.com"
    assert row.subject == "Printer on fire"
    assert row.message_id == "refused.1@customer.example"


@pytest.mark.parametrize("extra_settings", [SMALL_LIMIT], indirect=True, ids=["4096-bytes"])
def test_an_oversized_relay_post_is_413_and_recorded_with_its_headers(client):
    response = relay(client, raw=BIG)

    assert response.status_code == 413
    assert "larger than INBOUND_EMAIL_MAX_BYTES (4096 bytes)" in response.get_data(as_text=True)
    [row] = refusals()
    assert (row.ingress, row.status, row.size) == ("relay", 413, len(BIG))
    assert (row.subject, row.message_id) == ("Printer on fire", "refused.1@customer.example")
    assert inbound_rows() == [] and stored_keys() == []


def test_a_malformed_post_and_a_bad_signature_are_recorded(client):
    assert relay(client, raw=b"").status_code == 422
    fields = [*mailgun_signed("wrong-key"), ("body-mime", RAW)]
    assert post_form(client, MAILGUN_URL, fields).status_code == 401

    rows = refusals()
    assert [(r.ingress, r.status) for r in rows] == [("relay", 422), ("mailgun", 401)]
    assert rows[0].reason == "the message body is empty"
    assert rows[1].reason == "the signature does not match MAILGUN_INGRESS_SIGNING_KEY"
    assert rows[1].subject is None


def test_a_503_we_answer_is_recorded(client, monkeypatch):
    from storage import StorageError

    def broken(*args, **kwargs):
        raise StorageError("the S3 server is unreachable")

    monkeypatch.setattr("ingress.receive._store_verified", broken)
    response = relay(client)

    assert response.status_code == 503 and response.headers["Retry-After"] == "60"
    [row] = refusals()
    assert row.status == 503
    assert row.reason.startswith("the message could not be stored: the S3 server is unreachable")


@pytest.mark.parametrize("extra_settings", [SMALL_LIMIT], indirect=True, ids=["4096-bytes"])
def test_sendgrid_over_size_is_kept_as_too_large_then_reprocessed_once_the_limit_is_raised(
    app, client, admin
):
    response = post_form(client, SENDGRID_URL, [("email", BIG)], headers=basic_auth())

    # 2xx: SendGrid drops a 4xx without retrying, so the message is kept instead
    assert response.status_code == 204
    [row] = inbound_rows()
    assert row.status == "bounced" and row.source == "sendgrid"
    assert row.reason == (
        f"too large: {len(BIG)} bytes, over INBOUND_EMAIL_MAX_BYTES (4096); raise it and "
        "press Reprocess"
    )
    assert row.subject == "Printer on fire"
    assert inbound_job_ids() == []  # not processed
    log = admin.get("/admin/inbound?status=bounced").get_data(as_text=True)
    assert "too large" in log and "Printer on fire" in log

    # Reprocess while the limit is unchanged: refused, with what to do
    response = admin.post(f"/admin/inbound/{row.id}/reprocess")
    assert response.status_code == 422
    assert "still over INBOUND_EMAIL_MAX_BYTES (4096)" in response.get_data(as_text=True)
    assert inbound_job_ids() == []

    get_settings().inbound_max_bytes = 1024 * 1024  # the admin raised it and restarted
    assert admin.post(f"/admin/inbound/{row.id}/reprocess").status_code == 200
    work_inbound(app)
    db.session.expire_all()
    assert db.session.get(InboundEmail, row.id).status == "delivered"
    assert db.session.scalar(select(Message.subject)) == "Printer on fire"
    assert refusals() == []  # kept, not refused


@pytest.mark.parametrize("extra_settings", [SMALL_LIMIT], indirect=True, ids=["4096-bytes"])
def test_sendgrid_over_the_ceiling_is_still_413_and_recorded(client, monkeypatch):
    monkeypatch.setattr("blueprints.ingress.OVERSIZE_CEILING", 8192)
    response = post_form(client, SENDGRID_URL, [("email", BIG + b"y" * 4000)], headers=basic_auth())

    assert response.status_code == 413
    assert inbound_rows() == []
    [row] = refusals()
    assert (row.ingress, row.status) == ("sendgrid", 413)
    assert row.reason == "the message is larger than 8192 bytes, the most sendgrid sends"


def test_refusals_show_in_the_inbound_log_and_on_the_system_page(client, admin):
    relay(client, headers=basic_auth("guess"))
    relay(client, content_type="text/plain")

    log = admin.get("/admin/inbound").get_data(as_text=True)
    assert "2 posts refused by an ingress in the last 24 hours" in log
    assert "relay answered 415 (Content-Type must be message/rfc822, not text/plain)" in log

    page = admin.get("/admin/inbound/refused")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "invalid credentials" in html and "Printer on fire" in html
    assert "refused.1@customer.example" in html
    assert html.count("<tr>") == 3  # header + two refusals

    system = admin.get("/admin/system").get_data(as_text=True)
    assert "refused posts" in system
    assert "2 in the last 24 hours" in system


def test_refusals_page_is_for_admins_only(client, auth, inbox, make_user):
    agent = make_team(inbox, make_user).bob
    Browser(client, auth).login(agent)
    assert client.get("/admin/inbound/refused").status_code == 403


def test_doctor_counts_refused_posts(app, client):
    relay(client, headers=basic_auth("guess"))
    with app.app_context():
        result = app.test_cli_runner().invoke(args=["doctor"])
    line = next(x for x in result.output.splitlines() if "refused posts" in x)
    assert line.startswith("WARN")
    assert "1 in the last 24 hours" in line and "relay answered 401" in line
    assert "Refused posts in the Inbound log" in result.output


def test_the_sweep_forgets_refusals_after_the_retention(client):
    relay(client, headers=basic_auth("guess"))
    relay(client, content_type="text/plain")
    old, recent = refusals()
    old.last_at = utcnow() - timedelta(days=31)
    db.session.commit()

    incinerate_processed_raw_emails()

    assert [r.id for r in refusals()] == [recent.id]


def test_the_refusals_page_pages_older_ones(client, admin, monkeypatch):
    monkeypatch.setattr("services.ingress_refusals.PAGE", 2)
    for n in range(3):
        relay(client, content_type=f"text/x-{n}")
    first = admin.get("/admin/inbound/refused").get_data(as_text=True)
    assert "text/x-2" in first and "text/x-1" in first and "text/x-0" not in first
    oldest = refusals()[0]
    assert f"/admin/inbound/refused?before={refusals()[1].id}" in first
    older = admin.get(f"/admin/inbound/refused?before={refusals()[1].id}").get_data(as_text=True)
    assert "text/x-0" in older and oldest.reason in older
