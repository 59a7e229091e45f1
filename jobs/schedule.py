"""Periodic jobs, loaded by RQ's own cron scheduler (`python worker.py --cron`).

Exactly one scheduler enqueues (a Redis lock, runtime/single_scheduler.py): start a second one,
on another machine, and it waits to take over. Any number of workers execute what it enqueues.
"""

from rq import cron

from jobs.imap_poll import enqueue_due_imap_polls
from jobs.sweeps import (
    incinerate_processed_raw_emails,
    recover_inbound,
    recover_outgoing,
    send_due_replies,
    wake_snoozed,
)
from services.notifications.email import send_due_notification_emails
from services.oauth import purge_abandoned_drafts
from services.sessions import purge_expired_sessions

cron.register(
    incinerate_processed_raw_emails, queue_name="low", cron="17 * * * *", job_timeout=1800
)
# Every 15 s: a killed worker's lease (20 s, services/leases.py) has run out and its mail is
# running on another worker well within a minute.
cron.register(recover_inbound, queue_name="default", interval=15, job_timeout=300)
cron.register(recover_outgoing, queue_name="default", interval=15, job_timeout=300)
cron.register(wake_snoozed, queue_name="default", interval=60, job_timeout=300)
# Replies wait for their undo window (SEND_UNDO_SECONDS) or scheduled time without a job; this
# enqueues them when due, so a 10 s window sends within 15 s (services/send_later.py).
cron.register(send_due_replies, queue_name="default", interval=5, job_timeout=60)
cron.register(enqueue_due_imap_polls, queue_name="default", interval=30, job_timeout=120)
# Expired sessions are already refused at sign-in time; this only keeps the table small.
cron.register(purge_expired_sessions, queue_name="low", cron="43 * * * *", job_timeout=300)
# Tokens of wizard drafts nobody finished (a draft lives a day).
cron.register(purge_abandoned_drafts, queue_name="low", cron="51 * * * *", job_timeout=300)
# Notification emails wait ~10 s after their event (services/notifications/events.py), so
# they leave within 20 s; each run claims its emails, so overlapping runs send nothing twice.
cron.register(send_due_notification_emails, queue_name="default", interval=10, job_timeout=120)
