"""The SNS string to sign, held against the examples in AWS's "Verifying the signatures of
Amazon SNS messages" (byte-sorted name/value lines, Subject only when given)."""

from __future__ import annotations

from ingress.sns import string_to_sign

TOPIC = "arn:aws:sns:us-east-2:123456789012:s4-MySNSTopic-1G1WEFCOXTC0P"
SIGNATURE_FIELDS = {
    "SignatureVersion": "1",
    "Signature": "EXAMPLEpH+",
    "SigningCertURL": "https://sns.us-east-2.amazonaws.com/SimpleNotificationService-x.pem",
    "UnsubscribeURL": "https://sns.us-east-2.amazonaws.com/?Action=Unsubscribe",
}


def test_notification_string_to_sign_is_the_documented_one():
    message = {
        "Type": "Notification",
        "MessageId": "4d4dc071-ddbf-465d-bba8-08f81c89da64",
        "TopicArn": TOPIC,
        "Subject": "My subject",
        "Message": "My Test Message",
        "Timestamp": "2012-06-05T04:37:04.321Z",
        **SIGNATURE_FIELDS,
    }

    assert (
        string_to_sign(message)
        == (
            "Message\nMy Test Message\n"
            "MessageId\n4d4dc071-ddbf-465d-bba8-08f81c89da64\n"
            "Subject\nMy subject\n"
            "Timestamp\n2012-06-05T04:37:04.321Z\n"
            f"TopicArn\n{TOPIC}\n"
            "Type\nNotification\n"
        ).encode()
    )


def test_a_notification_without_subject_leaves_the_subject_lines_out():
    message = {
        "Type": "Notification",
        "MessageId": "m-1",
        "TopicArn": TOPIC,
        "Subject": None,
        "Message": "line one\nline two",
        "Timestamp": "2012-06-05T04:37:04.321Z",
    }

    assert (
        string_to_sign(message)
        == (
            "Message\nline one\nline two\nMessageId\nm-1\nTimestamp\n2012-06-05T04:37:04.321Z\n"
            f"TopicArn\n{TOPIC}\nType\nNotification\n"
        ).encode()
    )


def test_confirmation_string_to_sign_has_subscribe_url_and_token_not_subject():
    for kind in ("SubscriptionConfirmation", "UnsubscribeConfirmation"):
        message = {
            "Type": kind,
            "MessageId": "3d891288-136d-417f-bc05-901c108273ee",
            "Token": "2336412f37fb",
            "TopicArn": TOPIC,
            "Subject": "never signed for a confirmation",
            "Message": "My Test Message",
            "SubscribeURL": f"https://sns.us-east-2.amazonaws.com/?Action=ConfirmSubscription"
            f"&TopicArn={TOPIC}&Token=2336412f37fb",
            "Timestamp": "2012-06-03T19:25:13.719Z",
            **SIGNATURE_FIELDS,
        }

        assert (
            string_to_sign(message)
            == (
                "Message\nMy Test Message\n"
                "MessageId\n3d891288-136d-417f-bc05-901c108273ee\n"
                f"SubscribeURL\n{message['SubscribeURL']}\n"
                "Timestamp\n2012-06-03T19:25:13.719Z\n"
                "Token\n2336412f37fb\n"
                f"TopicArn\n{TOPIC}\n"
                f"Type\n{kind}\n"
            ).encode()
        )


def test_non_ascii_text_is_signed_as_utf8():
    message = {
        "Type": "Notification",
        "MessageId": "m-2",
        "TopicArn": TOPIC,
        "Message": "Zażółć",
        "Timestamp": "2012-06-05T04:37:04.321Z",
    }

    assert string_to_sign(message).startswith("Message\nZażółć\n".encode())
