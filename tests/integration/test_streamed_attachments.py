"""Large attachments go from the raw message to storage block by block (mail/streaming.py)
through the real job: stored byte for byte, downloadable, too-large ones still listed."""

import random
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from extensions import db, get_storage
from mail import streaming
from models import Attachment, InboxMember
from services.sizes import human_size
from tests.support.inbound import post_relay, work_inbound

LIMIT = 3 * 1024 * 1024
SCANS = random.Random(20).randbytes(2 * 1024 * 1024 + 7)  # stored: under the limit
VIDEO = random.Random(21).randbytes(LIMIT + 1)  # over the limit: listed, not stored
NOTES = ("Größe, Maße: " + "zeile\n" * 40_000).encode()  # quoted-printable, ~280 KB


@pytest.fixture(params=["local", "s3"])
def app_config(request, app_config):
    config = {**app_config, "ATTACHMENT_MAX_BYTES": str(LIMIT)}
    if request.param == "s3":
        server = request.getfixturevalue("s3_server")
        config.update(
            STORAGE_BACKEND="minio",
            MINIO_ENDPOINT=server["endpoint"],
            MINIO_ACCESS_KEY=server["access_key"],
            MINIO_SECRET_KEY=server["secret_key"],
            MINIO_BUCKET=server["bucket"],
        )
    return config


@pytest.fixture
def streamed(monkeypatch):
    """Bodies from 64 KiB are cut out; the blocks read for each one are counted."""
    monkeypatch.setattr(streaming, "STREAM_FROM_BYTES", 64 * 1024)
    monkeypatch.setattr(streaming, "BLOCK", 256 * 1024)
    reads = []
    chunks = streaming.StreamedBody.chunks

    def counted(body):
        for block in chunks(body):
            reads.append(len(block))
            yield block

    monkeypatch.setattr(streaming.StreamedBody, "chunks", counted)
    return reads


def big_email(message_id: str) -> bytes:
    email = EmailMessage()
    email["From"], email["To"] = "Carla <carla@customer.example>", "support@example.com"
    email["Subject"], email["Message-ID"] = "The scans", message_id
    email.set_content("All the scans, attached.")
    email.add_attachment(SCANS, maintype="application", subtype="zip", filename="scans.zip")
    email.add_attachment(VIDEO, maintype="video", subtype="mp4", filename="video.mp4")
    qp = {"cte": "quoted-printable"}
    email.add_attachment(NOTES, maintype="text", subtype="plain", filename="notes.txt", **qp)
    return email.as_bytes()


def test_a_large_attachment_is_stored_byte_for_byte_and_downloadable(
    app, client, inbox, auth, make_user, streamed
):
    post_relay(client, big_email("<scans@customer.example>"))
    work_inbound(app)
    rows = {a.filename: a for a in db.session.scalars(select(Attachment))}
    assert set(rows) == {"scans.zip", "video.mp4", "notes.txt"}
    scans, video, notes = rows["scans.zip"], rows["video.mp4"], rows["notes.txt"]
    assert scans.size == len(SCANS) and scans.storage_key and scans.skipped_reason is None
    with get_storage().open(scans.storage_key) as stored:
        assert stored.read() == SCANS
    assert notes.size == len(NOTES) and get_storage().get_bytes(notes.storage_key) == NOTES
    assert video.storage_key is None and video.size == len(VIDEO)
    assert video.skipped_reason == f"too large ({human_size(len(VIDEO))}) — raw email kept"
    # Both stored files came through the streamed path, in blocks (the video was only counted).
    assert sum(streamed) == len(SCANS) + len(NOTES) and len(streamed) > 8

    user = make_user()
    db.session.add(InboxMember(inbox_id=inbox.id, user_id=user.id))
    db.session.commit()
    auth.login(user.email, user.plain_password)
    download = client.get(f"/attachments/{scans.id}")
    assert download.status_code == 200 and download.data == SCANS
    refused = client.get(f"/attachments/{video.id}")
    assert refused.status_code == 410
    assert "raw email kept" in refused.get_data(as_text=True)
