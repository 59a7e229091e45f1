"""Retention: processed raw messages are deleted after the retention period, nothing else."""

import io
from datetime import timedelta

from extensions import db, get_storage
from jobs.sweeps import incinerate_processed_raw_emails
from models import InboundEmail, utcnow


def stored_inbound(key: str, status: str, processed_days_ago: int | None) -> InboundEmail:
    get_storage().put(key, io.BytesIO(b"raw message"), length=11)
    processed = utcnow() - timedelta(days=processed_days_ago) if processed_days_ago else None
    row = InboundEmail(
        message_id=key,
        checksum=key.ljust(40, "0")[:40],
        source="relay",
        storage_key=key,
        status=status,
        processed_at=processed,
    )
    db.session.add(row)
    db.session.commit()
    return row


def test_only_old_delivered_and_bounced_raw_messages_are_deleted(app):
    old_delivered = stored_inbound("raw/old-delivered", "delivered", 31)
    old_bounced = stored_inbound("raw/old-bounced", "bounced", 40)
    recent = stored_inbound("raw/recent", "delivered", 2)
    old_failed = stored_inbound("raw/old-failed", "failed", 60)  # kept for reprocessing
    pending = stored_inbound("raw/pending", "pending", None)

    assert incinerate_processed_raw_emails() == 2

    storage = get_storage()
    for row in (old_delivered, old_bounced):
        db.session.refresh(row)
        assert row.storage_key is None and row.incinerated_at is not None
    assert not storage.exists("raw/old-delivered") and not storage.exists("raw/old-bounced")
    for row in (recent, old_failed, pending):
        db.session.refresh(row)
        assert storage.exists(row.storage_key)
    assert db.session.query(InboundEmail).count() == 5  # rows are kept, only bytes go
    assert incinerate_processed_raw_emails() == 0  # idempotent


def test_retention_period_is_configurable(app_config):
    from app import create_app

    app_config["INBOUND_EMAIL_RETENTION_DAYS"] = "90"
    app = create_app(app_config)
    with app.app_context():
        row = stored_inbound("raw/45-days", "delivered", 45)
        assert incinerate_processed_raw_emails() == 0
        db.session.refresh(row)
        assert row.storage_key == "raw/45-days"
        db.session.delete(row)
        db.session.commit()
