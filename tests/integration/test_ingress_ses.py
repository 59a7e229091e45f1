"""Amazon SES via SNS: signed SNS messages, SubscriptionConfirmation, SNS and S3 actions.

Requests are built from AWS's documentation (SNS's HTTP/S message formats and signature
verification, SES's receipt notifications) and signed with a test key whose certificate a
local https stand-in serves (tests/support/sns_stand_in.py); the S3 action is fetched from the
real S3 test server (SeaweedFS).
"""

from __future__ import annotations

import base64
import datetime
import io
import json
import uuid

import pytest

from ingress import sns as sns_module
from tests.support.ingress_requests import (
    assert_received_once,
    inbound_job_ids,
    inbound_rows,
    load_fixture,
    stored_keys,
)
from tests.support.sns_stand_in import SnsStandIn, certificate_for, new_key, sign

SES_URL = "/rails/action_mailbox/ses/inbound_emails"
REGION = "eu-west-1"
ACCOUNT = "123456789012"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:threadline-inbound"
OTHER_TOPIC = f"arn:aws:sns:us-east-1:{ACCOUNT}:threadline-other"
CERT_PATH = "/SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem"
CERT_URL = f"https://sns.{REGION}.amazonaws.com{CERT_PATH}"
SNS_TEXT = "text/plain; charset=UTF-8"
PLAIN = load_fixture("plain-text.eml")
PLAIN_ID = "plain-text.1@customer.example.com"
SUPPORT = "support@threadline.test"
SES_BUCKET = "ses-inbound-mail"

SIGNING_KEY = new_key()
OTHER_KEY = new_key()


@pytest.fixture(scope="module")
def sns(tmp_path_factory):
    stand_in = SnsStandIn(tmp_path_factory.mktemp("sns")).start()
    yield stand_in
    stand_in.stop()


@pytest.fixture(autouse=True)
def fresh_sns(sns, monkeypatch):
    """Each test: the stand-in's CA trusted (SSL_CERT_FILE), its routes and log reset, no
    certificate cached in the app."""
    monkeypatch.setenv("SSL_CERT_FILE", str(sns.ca_file))
    sns.routes.clear()
    sns.routes[CERT_PATH] = (200, certificate_for(SIGNING_KEY))
    sns.requests.clear()
    sns_module._CERTIFICATES.clear()
    yield
    sns_module._CERTIFICATES.clear()


@pytest.fixture
def app_config(app_config, extra_settings, sns):
    return {
        **app_config,
        "INBOUND_EMAIL_SERVICE": "ses",
        "SES_TOPIC_ARNS": f"{TOPIC}, {OTHER_TOPIC}",
        "SNS_CERTIFICATE_ORIGIN": sns.origin,
        **extra_settings,
    }


def sns_time(moment: datetime.datetime | None = None) -> str:
    moment = moment or datetime.datetime.now(datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def received(raw: bytes, encoding: str = "UTF8", recipients=(SUPPORT,), **action) -> dict:
    """SES's notification of an SNS action (or, given type="S3", of an S3 action)."""
    now = sns_time()
    notice = {
        "notificationType": "Received",
        "mail": {
            "timestamp": now,
            "source": "sam@customer.example.com",
            "messageId": "d6iitobk75ur44p8kdnnp7g2n800",
            "destination": list(recipients),
            "headersTruncated": False,
        },
        "receipt": {
            "timestamp": now,
            "processingTimeMillis": 222,
            "recipients": list(recipients),
            "spamVerdict": {"status": "PASS"},
            "virusVerdict": {"status": "PASS"},
            "spfVerdict": {"status": "PASS"},
            "dkimVerdict": {"status": "PASS"},
            "action": {"type": "SNS", "topicArn": TOPIC, "encoding": encoding, **action},
        },
    }
    if notice["receipt"]["action"]["type"] == "SNS":
        content = base64.b64encode(raw).decode() if encoding == "BASE64" else raw.decode()
        notice["content"] = content
    return notice


def notification(message, *, key=SIGNING_KEY, version="1", topic=TOPIC, **fields) -> dict:
    """An SNS Notification of `message` (a dict is sent as its JSON), signed."""
    body = {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": topic,
        "Subject": "Amazon SES Email Receipt Notification",
        "Message": message if isinstance(message, str) else json.dumps(message),
        "Timestamp": sns_time(),
        **fields,
    }
    signed = sign(body, key, version)
    return {
        **signed,
        "SigningCertURL": CERT_URL,
        "UnsubscribeURL": f"https://sns.{REGION}.amazonaws.com/?Action=Unsubscribe"
        f"&SubscriptionArn={topic}:2bcfbf39-05c3-41de-beaa-fcfcc21c8f55",
    }


def confirmation(kind="SubscriptionConfirmation", *, subscribe_url=None, **fields) -> dict:
    token = "2336412f37fb687f5d51e6e241d09c8058323f60b964268bfe08ce35640228c208a66d3621bd9"
    body = {
        "Type": kind,
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": token,
        "TopicArn": TOPIC,
        "Message": f"You have chosen to subscribe to the topic {TOPIC}.\n"
        "To confirm the subscription, visit the SubscribeURL included in this message.",
        "SubscribeURL": subscribe_url
        or f"https://sns.{REGION}.amazonaws.com/?Action=ConfirmSubscription"
        f"&TopicArn={TOPIC}&Token={token}",
        "Timestamp": sns_time(),
        **fields,
    }
    return {**sign(body, SIGNING_KEY, "1"), "SigningCertURL": CERT_URL}


def post(client, message: dict | bytes, content_type=SNS_TEXT, message_type=None):
    body = message if isinstance(message, bytes) else json.dumps(message).encode()
    headers = {}
    if isinstance(message, dict) and "Type" in message:
        headers = {
            "x-amz-sns-message-type": message_type or message["Type"],
            "x-amz-sns-message-id": str(message.get("MessageId")),
            "x-amz-sns-topic-arn": str(message.get("TopicArn")),
            "User-Agent": "Amazon Simple Notification Service Agent",
        }
    return client.post(SES_URL, data=body, content_type=content_type, headers=headers)


def assert_nothing_received():
    assert inbound_rows() == []
    assert stored_keys() == []
    assert inbound_job_ids() == []


CERT_GET = f"GET {CERT_PATH}"


# ---------------------------------------------------------------- good requests


def test_sns_action_notification_is_stored_with_its_recipients(client, sns):
    response = post(client, notification(received(PLAIN)))

    assert response.status_code == 204
    assert_received_once(PLAIN, "ses", PLAIN_ID, [SUPPORT])
    assert sns.requests == [CERT_GET]


def test_base64_content_signed_with_version_2_is_stored_byte_for_byte(client, sns):
    raw = load_fixture("iso-8859-2-html.eml")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    recipients = ["faktury@threadline.test", "billing@threadline.test"]
    message = notification(received(raw, "BASE64", recipients), version="2")

    assert post(client, message).status_code == 204
    assert_received_once(raw, "ses", "iso-8859-2-html.20250114091244@example.pl", recipients)
    assert sns.requests == [CERT_GET]


def test_application_json_delivery_policy_is_accepted(client):
    response = post(client, notification(received(PLAIN)), content_type="application/json")

    assert response.status_code == 204
    assert_received_once(PLAIN, "ses", PLAIN_ID, [SUPPORT])


def test_a_notification_without_subject_is_verified_without_it(client):
    message = notification(received(PLAIN))
    unsigned = {k: v for k, v in message.items() if k not in ("Subject", "Signature")}
    message = {**sign(unsigned, SIGNING_KEY), "SigningCertURL": CERT_URL}

    assert "Subject" not in message
    assert post(client, message).status_code == 204
    assert len(inbound_rows()) == 1


def test_the_signing_certificate_is_fetched_once_and_cached(client, sns):
    other = PLAIN.replace(b"plain-text.1@", b"plain-text.2@")

    assert post(client, notification(received(PLAIN))).status_code == 204
    assert post(client, notification(received(other))).status_code == 204

    assert len(inbound_rows()) == 2
    assert sns.requests == [CERT_GET]


def test_the_certificate_cache_is_bounded(client, sns):
    paths = [f"/SimpleNotificationService-{n:032x}.pem" for n in range(sns_module.CACHE_SIZE + 1)]
    for path in paths:
        sns.routes[path] = (200, certificate_for(SIGNING_KEY))
    host = f"https://sns.{REGION}.amazonaws.com"

    for path in [*paths, paths[-1], paths[0]]:
        message = {**notification(received(PLAIN)), "SigningCertURL": host + path}
        assert post(client, message).status_code == 204

    # the last is still cached; the first was dropped for the newest and is fetched again
    assert sns.requests == [f"GET {path}" for path in [*paths, paths[0]]]
    assert len(inbound_rows()) == 1  # the same message each time


def test_a_message_just_inside_the_hour_is_accepted(client):
    almost = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=59)
    message = notification(received(PLAIN), Timestamp=sns_time(almost))

    assert post(client, message).status_code == 204


def test_subscription_confirmation_gets_the_subscribe_url_and_stores_nothing(client, sns):
    message = confirmation()

    response = post(client, message)

    assert response.status_code == 204
    query = message["SubscribeURL"].split(".com", 1)[1]
    assert query.startswith("/?Action=ConfirmSubscription&TopicArn=")
    assert sns.requests == [CERT_GET, f"GET {query}"]
    assert_nothing_received()


def test_unsubscribe_confirmation_is_accepted_and_not_followed(client, sns, caplog):
    response = post(client, confirmation("UnsubscribeConfirmation"))

    assert response.status_code == 204
    assert sns.requests == [CERT_GET]
    assert_nothing_received()
    assert f"{TOPIC} unsubscribed this endpoint" in caplog.text


def test_ses_setup_notification_is_accepted_and_stores_nothing(client, sns):
    notice = {
        "notificationType": "AmazonSnsSubscriptionSucceeded",
        "message": f"You have successfully subscribed your Amazon SNS topic '{TOPIC}' to "
        "receive 'Received' notifications from Amazon SES.",
    }

    assert post(client, notification(notice)).status_code == 204
    assert sns.requests == [CERT_GET]
    assert_nothing_received()


# ---------------------------------------------------------------- signature refusals


def _tampered():
    message = notification(received(PLAIN))
    return {**message, "Message": message["Message"].replace("support@", "attacker@")}


def _resigned(**changes):
    """Signed correctly, then changed in what the signature does not cover."""
    return {**notification(received(PLAIN)), **changes}


def _second_later(stamp: str) -> str:
    moment = datetime.datetime.fromisoformat(stamp) + datetime.timedelta(seconds=1)
    return sns_time(moment)


def _signature_case(name):
    hour_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=61)
    good = notification(received(PLAIN))
    cases = {
        "tampered-message": _tampered,
        "tampered-message-id": lambda: {**good, "MessageId": str(uuid.uuid4())},
        "tampered-timestamp": lambda: {**good, "Timestamp": _second_later(good["Timestamp"])},
        "subject-removed": lambda: {k: v for k, v in good.items() if k != "Subject"},
        "signed-by-another-key": lambda: notification(received(PLAIN), key=OTHER_KEY),
        "version-1-claimed-signed-sha256": lambda: {
            **notification(received(PLAIN), version="2"),
            "SignatureVersion": "1",
        },
        "version-2-claimed-signed-sha1": lambda: {**good, "SignatureVersion": "2"},
        "unknown-signature-version": lambda: {**good, "SignatureVersion": "3"},
        "signature-version-as-number": lambda: {**good, "SignatureVersion": 1},
        "signature-version-missing": lambda: {
            k: v for k, v in good.items() if k != "SignatureVersion"
        },
        "signature-missing": lambda: {k: v for k, v in good.items() if k != "Signature"},
        "signature-empty": lambda: {**good, "Signature": ""},
        "signature-not-base64": lambda: {**good, "Signature": "not base64!"},
        "stale": lambda: notification(received(PLAIN), Timestamp=sns_time(hour_ago)),
        "timestamp-not-a-time": lambda: notification(received(PLAIN), Timestamp="yesterday"),
        "timestamp-without-zone": lambda: notification(received(PLAIN), Timestamp=sns_time()[:-1]),
        "unknown-topic": lambda: notification(
            received(PLAIN), topic=f"arn:aws:sns:{REGION}:{ACCOUNT}:someone-else"
        ),
        "cert-url-missing": lambda: {k: v for k, v in good.items() if k != "SigningCertURL"},
    }
    return cases[name]()


SIGNATURE_CASES = [
    "tampered-message",
    "tampered-message-id",
    "tampered-timestamp",
    "subject-removed",
    "signed-by-another-key",
    "version-1-claimed-signed-sha256",
    "version-2-claimed-signed-sha1",
    "unknown-signature-version",
    "signature-version-as-number",
    "signature-version-missing",
    "signature-missing",
    "signature-empty",
    "signature-not-base64",
    "stale",
    "timestamp-not-a-time",
    "timestamp-without-zone",
    "unknown-topic",
    "cert-url-missing",
]


@pytest.mark.parametrize("case", SIGNATURE_CASES)
def test_bad_signature_is_401(client, case):
    response = post(client, _signature_case(case))

    assert response.status_code == 401
    assert_nothing_received()


def test_an_unknown_topic_is_named_in_the_refusal(client, sns):
    topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:someone-else"

    response = post(client, notification(received(PLAIN), topic=topic))

    assert response.status_code == 401
    assert f"{topic!r} is not listed in SES_TOPIC_ARNS" in response.get_data(as_text=True)
    assert sns.requests == []  # refused before anything is fetched


@pytest.mark.parametrize(
    "cert_url",
    [
        f"https://sns.{REGION}.amazonaws.com.evil.test{CERT_PATH}",
        f"http://sns.{REGION}.amazonaws.com{CERT_PATH}",
        f"https://sns.us-east-1.amazonaws.com{CERT_PATH}",
        f"https://evil.test/sns.{REGION}.amazonaws.com{CERT_PATH}",
        f"https://sns.{REGION}.amazonaws.com@evil.test{CERT_PATH}",
        f"https://evil.test@sns.{REGION}.amazonaws.com{CERT_PATH}",
        f"https://sns.{REGION}.amazonaws.com:8443{CERT_PATH}",
        f"https://sns-{REGION}.amazonaws.com{CERT_PATH}",
        f"https://xsns.{REGION}.amazonaws.com{CERT_PATH}",
        f"https://SNS.{REGION.upper()}.AMAZONAWS.COM{CERT_PATH}",
        f"ftp://sns.{REGION}.amazonaws.com{CERT_PATH}",
        CERT_PATH,
    ],
    ids=[
        "evil-suffix",
        "http-scheme",
        "other-region-than-the-topic",
        "evil-host-with-sns-path",
        "userinfo-before-evil-host",
        "userinfo-before-sns-host",
        "port",
        "dash-not-dot",
        "prefix",
        "upper-case",
        "ftp",
        "relative",
    ],
)
def test_certificate_url_off_the_sns_host_is_401_and_never_fetched(client, sns, cert_url):
    response = post(client, {**notification(received(PLAIN)), "SigningCertURL": cert_url})

    assert response.status_code == 401
    assert sns.requests == []
    assert_nothing_received()


def test_a_missing_certificate_is_401(client, sns):
    del sns.routes[CERT_PATH]

    response = post(client, notification(received(PLAIN)))

    assert response.status_code == 401
    assert sns.requests == [CERT_GET]
    assert_nothing_received()


@pytest.mark.parametrize(
    "served",
    [
        b"not a certificate",
        certificate_for(SIGNING_KEY, not_before=datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)),
    ],
    ids=["not-pem", "expired"],
)
def test_an_unusable_certificate_is_401(client, sns, served):
    sns.routes[CERT_PATH] = (200, served)

    assert post(client, notification(received(PLAIN))).status_code == 401
    assert_nothing_received()


def test_a_certificate_host_error_is_503_so_sns_retries(client, sns):
    sns.routes[CERT_PATH] = (500, b"internal error")

    response = post(client, notification(received(PLAIN)))

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "60"
    assert sns.requests == [CERT_GET]
    assert_nothing_received()


def test_the_certificate_host_must_pass_tls_verification(client, sns, monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE")  # the system's CAs do not know the stand-in's

    response = post(client, notification(received(PLAIN)))

    assert response.status_code == 503
    assert "CERTIFICATE_VERIFY_FAILED" in response.get_data(as_text=True)
    assert sns.requests == []  # the handshake failed before any request
    assert_nothing_received()


def test_a_failed_fetch_is_not_cached(client, sns):
    sns.routes[CERT_PATH] = (500, b"internal error")
    assert post(client, notification(received(PLAIN))).status_code == 503
    sns.routes[CERT_PATH] = (200, certificate_for(SIGNING_KEY))

    assert post(client, notification(received(PLAIN))).status_code == 204
    assert sns.requests == [CERT_GET, CERT_GET]


# ---------------------------------------------------------------- subscription confirmation


@pytest.mark.parametrize(
    "subscribe_url",
    [
        f"https://sns.{REGION}.amazonaws.com.evil.test/?Action=ConfirmSubscription&Token=x",
        f"http://sns.{REGION}.amazonaws.com/?Action=ConfirmSubscription&Token=x",
        "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=x",
    ],
    ids=["evil-suffix", "http", "other-region"],
)
def test_a_subscribe_url_off_the_sns_host_is_422_and_not_visited(client, sns, subscribe_url):
    response = post(client, confirmation(subscribe_url=subscribe_url))

    assert response.status_code == 422
    assert sns.requests == [CERT_GET]
    assert_nothing_received()


def test_a_tampered_subscribe_url_is_401_and_not_visited(client, sns):
    message = confirmation()
    evil = message["SubscribeURL"].replace("Token=", "Token=0")

    response = post(client, {**message, "SubscribeURL": evil})

    assert response.status_code == 401
    assert sns.requests == [CERT_GET]


@pytest.mark.parametrize("status, expected", [(403, 422), (500, 503)])
def test_a_refused_confirmation_is_reported(client, sns, status, expected):
    message = confirmation()
    query = message["SubscribeURL"].split(".com", 1)[1]
    sns.routes[query] = (status, b"<ErrorResponse/>")

    response = post(client, message)

    assert response.status_code == expected
    assert sns.requests == [CERT_GET, f"GET {query}"]


# ---------------------------------------------------------------- payload refusals


@pytest.mark.parametrize(
    "content_type",
    ["multipart/form-data; boundary=x", "application/x-www-form-urlencoded", "text/html", ""],
    ids=["multipart", "urlencoded", "html", "none"],
)
def test_wrong_content_type_is_415(client, content_type):
    response = post(client, notification(received(PLAIN)), content_type=content_type)

    assert response.status_code == 415
    assert_nothing_received()


def _payload_case(name):
    good = notification(received(PLAIN))
    without = lambda field: {k: v for k, v in good.items() if k != field}  # noqa: E731
    notice = received(PLAIN)
    cases = {
        "not-json": lambda: b'{"Type": "Notification",',
        "json-array": lambda: b"[]",
        "type-missing": lambda: without("Type"),
        "type-unknown": lambda: {**good, "Type": "Something"},
        "message-id-missing": lambda: without("MessageId"),
        "message-missing": lambda: without("Message"),
        "topic-missing": lambda: without("TopicArn"),
        "timestamp-missing": lambda: without("Timestamp"),
        "subject-a-number": lambda: notification(received(PLAIN), Subject=7),
        "token-missing": lambda: {k: v for k, v in confirmation().items() if k != "Token"},
        "message-not-json": lambda: notification("Hello world!"),
        "message-a-list": lambda: notification([1, 2]),
        "receipt-missing": lambda: notification({"notificationType": "Received"}),
        "action-missing": lambda: notification({**notice, "receipt": {"recipients": [SUPPORT]}}),
        "bounce-action": lambda: notification(received(PLAIN, type="Bounce")),
        "content-missing": lambda: notification(
            {k: v for k, v in notice.items() if k != "content"}
        ),
        "content-blank": lambda: notification(received(b"\r\n \n")),
        "content-not-base64": lambda: notification({**received(PLAIN, "BASE64"), "content": "!"}),
        "recipients-not-a-list": lambda: notification(
            {**notice, "receipt": {**notice["receipt"], "recipients": SUPPORT}}
        ),
        "recipient-with-line-break": lambda: notification(
            received(PLAIN, recipients=["support@threadline.test\nBcc: evil@x.test"])
        ),
        "s3-action-without-key": lambda: notification(
            received(PLAIN, type="S3", bucketName=SES_BUCKET)
        ),
    }
    return cases[name]()


PAYLOAD_CASES = [
    "not-json",
    "json-array",
    "type-missing",
    "type-unknown",
    "message-id-missing",
    "message-missing",
    "topic-missing",
    "timestamp-missing",
    "subject-a-number",
    "token-missing",
    "message-not-json",
    "message-a-list",
    "receipt-missing",
    "action-missing",
    "bounce-action",
    "content-missing",
    "content-blank",
    "content-not-base64",
    "recipients-not-a-list",
    "recipient-with-line-break",
    "s3-action-without-key",
]


@pytest.mark.parametrize("case", PAYLOAD_CASES)
def test_malformed_payload_is_422(client, case):
    response = post(client, _payload_case(case))

    assert response.status_code == 422
    assert_nothing_received()


def test_a_header_type_other_than_the_body_is_422(client):
    message = notification(received(PLAIN))

    response = post(client, message, message_type="SubscriptionConfirmation")

    assert response.status_code == 422
    assert_nothing_received()


# ---------------------------------------------------------------- settings


@pytest.mark.parametrize(
    "extra_settings", [{"INBOUND_EMAIL_SERVICE": "relay"}], indirect=True, ids=["relay-only"]
)
def test_ses_is_404_when_not_enabled(client, sns):
    response = post(client, notification(received(PLAIN)))

    assert response.status_code == 404
    assert sns.requests == []
    assert_nothing_received()


@pytest.mark.parametrize(
    "extra_settings", [{"INBOUND_EMAIL_MAX_BYTES": "4096"}], indirect=True, ids=["4096-bytes"]
)
def test_oversized_mail_is_kept_as_too_large_not_answered_413(client, sns):
    """SNS counts a 4xx as delivered and drops the mail: it is kept, bounced as too large,
    for an admin to raise the limit and reprocess (tests/integration/test_ingress_refusals.py)."""
    response = post(client, notification(received(PLAIN + b"x" * 5000)))

    assert response.status_code == 204
    [row] = inbound_rows()
    assert row.status == "bounced" and row.reason.startswith("too large: ")
    assert inbound_job_ids() == []


@pytest.mark.parametrize(
    "extra_settings", [{"SES_TOPIC_ARNS": OTHER_TOPIC}], indirect=True, ids=["other-topic"]
)
def test_only_the_listed_topics_are_taken(client, sns):
    assert post(client, notification(received(PLAIN))).status_code == 401
    assert sns.requests == []


# ---------------------------------------------------------------- the S3 action


class TestS3Action:
    """SES stored the mail in a bucket of the real S3 test server; the notification names it."""

    @pytest.fixture
    def bucket(self, s3_server):
        from minio import Minio

        client = Minio(
            s3_server["endpoint"],
            access_key=s3_server["access_key"],
            secret_key=s3_server["secret_key"],
            secure=False,
        )
        if not client.bucket_exists(SES_BUCKET):
            client.make_bucket(SES_BUCKET)
        return client

    @pytest.fixture
    def app_config(self, app_config, s3_server, s3_settings):
        return {
            **app_config,
            "SES_S3_ENDPOINT": f"http://{s3_server['endpoint']}",
            "SES_S3_ACCESS_KEY": s3_server["access_key"],
            "SES_S3_SECRET_KEY": s3_server["secret_key"],
            **s3_settings,
        }

    @pytest.fixture
    def s3_settings(self, request):
        return getattr(request, "param", {})

    def put(self, bucket, raw: bytes) -> str:
        key = f"inbound/{uuid.uuid4().hex}"
        bucket.put_object(SES_BUCKET, key, io.BytesIO(raw), len(raw))
        return key

    def s3_notification(self, key: str, recipients=(SUPPORT,)) -> dict:
        notice = received(b"", recipients=recipients, type="S3", bucketName=SES_BUCKET)
        notice["receipt"]["action"] = {
            "type": "S3",
            "topicArn": TOPIC,
            "bucketName": SES_BUCKET,
            "objectKeyPrefix": "inbound",
            "objectKey": key,
        }
        return notification(notice)

    def test_the_mail_is_fetched_from_the_bucket(self, client, bucket, sns):
        raw = load_fixture("inline-images.eml")
        key = self.put(bucket, raw)

        response = post(client, self.s3_notification(key))

        assert response.status_code == 204
        assert_received_once(raw, "ses", "inline-images.7f3a@customer.example.com", [SUPPORT])
        assert sns.requests == [CERT_GET]

    def test_an_absent_object_is_422(self, client, bucket):
        response = post(client, self.s3_notification("inbound/never-stored"))

        assert response.status_code == 422
        assert "does not exist" in response.get_data(as_text=True)
        assert_nothing_received()

    @pytest.mark.parametrize(
        "s3_settings",
        [{"SES_S3_SECRET_KEY": "not-the-secret"}, {"SES_S3_ENDPOINT": "http://127.0.0.1:9"}],
        indirect=True,
        ids=["wrong-secret", "unreachable"],
    )
    def test_s3_trouble_is_503_so_sns_retries(self, client, bucket):
        key = self.put(bucket, PLAIN)

        response = post(client, self.s3_notification(key))

        assert response.status_code == 503
        assert response.headers["Retry-After"] == "60"
        assert_nothing_received()

    @pytest.mark.parametrize(
        "s3_settings", [{"INBOUND_EMAIL_MAX_BYTES": "4096"}], indirect=True, ids=["4096-bytes"]
    )
    def test_an_object_over_the_size_limit_is_kept_as_too_large(self, client, bucket):
        key = self.put(bucket, PLAIN + b"x" * 5000)

        response = post(client, self.s3_notification(key))

        assert response.status_code == 204
        [row] = inbound_rows()
        assert row.status == "bounced" and row.reason.startswith("too large: ")
        assert row.size > 4096
        assert inbound_job_ids() == []

    @pytest.mark.parametrize(
        "s3_settings", [{"INBOUND_EMAIL_MAX_BYTES": "4096"}], indirect=True, ids=["4096-bytes"]
    )
    def test_an_object_over_what_ses_stores_is_413(self, client, bucket, monkeypatch):
        monkeypatch.setattr("ingress.ses.S3_ACTION_MAX", 8192)
        key = self.put(bucket, PLAIN + b"x" * 9000)

        response = post(client, self.s3_notification(key))

        assert response.status_code == 413
        assert_nothing_received()

    def test_an_empty_object_is_422(self, client, bucket):
        response = post(client, self.s3_notification(self.put(bucket, b"")))

        assert response.status_code == 422
        assert_nothing_received()
