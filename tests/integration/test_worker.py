"""The job queue end to end: the web process enqueues, a real worker process runs the job."""

from __future__ import annotations

import contextvars
import os
import re
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from croniter import croniter
from redis import Redis
from rq.cron import CronScheduler
from rq.job import Job, JobStatus

from extensions import QUEUE_NAMES, get_queue, get_redis
from jobs.diagnostics import worker_ping
from tests.conftest import csrf_token_from

ROOT = Path(__file__).resolve().parents[2]
HTMX = {"HX-Request": "true"}


def worker_env(app_config: dict) -> dict[str, str]:
    """The test app's settings as environment variables, and no .env file."""
    env = dict(os.environ)
    for name in ("SECRET_KEY", "INBOUND_EMAIL_PASSWORD", "DATABASE_URL", "REDIS_URL", "APP_URL"):
        env[name] = str(app_config[name])
    env["INSTANCE_PATH"] = str(app_config["INSTANCE_PATH"])
    env["ENV_FILE"] = os.devnull
    return env


def run_worker_burst(app_config: dict) -> subprocess.CompletedProcess:
    """`python worker.py --burst` as its own process: works until the queues are empty."""
    result = subprocess.run(
        [sys.executable, "worker.py", "--burst"],
        cwd=ROOT,
        env=worker_env(app_config),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"worker failed:\n{result.stdout}\n{result.stderr}"
    return result


def sign_in_admin(client, auth, make_user):
    admin = make_user(email="boss@example.com", name="Bo Boss", role="admin")
    response = auth.login(admin.email, admin.plain_password)
    assert response.status_code == 302, response.get_data(as_text=True)
    return admin


def start_check(client) -> str:
    page = client.get("/admin/system")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Test the background worker" in html
    token = csrf_token_from(html)
    response = client.post("/admin/system/worker-check", headers={**HTMX, "X-CSRFToken": token})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)


def test_a_job_enqueued_by_the_web_process_runs_in_a_worker_process(
    app, app_config, client, auth, make_user
):
    sign_in_admin(client, auth, make_user)
    make_user(email="agent@example.com", name="Ana Agent")  # two users in the database

    partial = start_check(client)
    assert "waiting for a worker" in partial
    assert "<html" not in partial  # a fragment for htmx, not a whole page
    job_id = re.search(r"Job (\S+) is queued", partial).group(1)
    poll_url = re.search(r'hx-get="([^"]+)"', partial).group(1)
    assert poll_url == f"/admin/system/worker-check/{job_id}"

    # Nothing has run it yet: the poll still says waiting.
    assert "waiting for a worker" in client.get(poll_url, headers=HTMX).get_data(as_text=True)

    run_worker_burst(app_config)

    result = Job.fetch(job_id, connection=get_redis()).return_value()
    assert result["job_id"] == job_id
    assert result["pid"] != os.getpid()  # ran in another process
    assert result["users"] == 2  # with the same database as the web process

    response = client.get(poll_url, headers=HTMX)
    assert response.status_code == 200
    done = response.get_data(as_text=True)
    assert "Done" in done, done
    assert f"(pid {result['pid']})" in done
    assert f"(pid {os.getpid()})" not in done
    assert "saw 2 user(s)" in done
    assert "hx-get" not in done  # polling stops once the job is done


def test_worker_check_without_csrf_token_is_refused(app, client, auth, make_user):
    sign_in_admin(client, auth, make_user)
    response = client.post("/admin/system/worker-check", headers=HTMX)
    assert response.status_code == 400
    assert get_queue("default").count == 0


def test_unknown_job_is_a_404(app, client, auth, make_user):
    sign_in_admin(client, auth, make_user)
    response = client.get("/admin/system/worker-check/no-such-job", headers=HTMX)
    assert response.status_code == 404
    assert "start a new one" in response.get_data(as_text=True)


def _job_context_marker() -> dict:
    """A job that needs the app: current_app, settings and the database session."""
    from flask import current_app
    from sqlalchemy import text

    from extensions import db, get_settings

    return {
        "app": current_app.import_name,
        "instance_path": get_settings().instance_path,
        "one": db.session.execute(text("SELECT 1")).scalar(),
    }


def test_build_worker_runs_jobs_inside_an_app_context(app, app_config, make_user):
    from worker import build_worker

    make_user()
    make_user()
    ping = get_queue("default").enqueue(worker_ping)
    marker = get_queue("low").enqueue(_job_context_marker)

    worker = build_worker(app, simple=True)
    saved = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        # An empty contextvars context: no app context leaks in from this test, so the
        # worker itself must push one for each job.
        contextvars.Context().run(worker.work, burst=True)
    finally:
        signal.signal(signal.SIGINT, saved[0])
        signal.signal(signal.SIGTERM, saved[1])

    for job in (ping, marker):
        job.refresh()
        assert job.get_status() == JobStatus.FINISHED, job.latest_result().exc_string
    assert ping.return_value()["users"] == 2
    assert ping.return_value()["pid"] == os.getpid()  # simple worker: in-process
    assert marker.return_value() == {
        "app": "app",
        "instance_path": os.path.abspath(app_config["INSTANCE_PATH"]),
        "one": 1,
    }


def test_agents_cannot_open_the_system_page_or_start_jobs(app, client, auth, make_user):
    agent = make_user(role="agent")
    auth.login(agent.email, agent.plain_password)
    assert client.get("/admin/system").status_code == 403
    token = csrf_token_from(client.get("/").get_data(as_text=True))
    response = client.post("/admin/system/worker-check", headers={**HTMX, "X-CSRFToken": token})
    assert response.status_code == 403
    assert get_queue("default").count == 0


def test_signed_out_visitors_are_sent_to_sign_in(app, client):
    response = client.get("/admin/system")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_schedule_registers_the_periodic_jobs_with_rq_cron(redis_server):
    scheduler = CronScheduler(connection=Redis.from_url(redis_server))
    scheduler.load_config_from_file("jobs.schedule")

    jobs = {job.func_name: job for job in scheduler.get_jobs()}
    assert set(jobs) == {
        "jobs.sweeps.incinerate_processed_raw_emails",
        "jobs.sweeps.recover_inbound",
        "jobs.sweeps.recover_outgoing",
        "jobs.sweeps.wake_snoozed",
        "jobs.sweeps.send_due_replies",
        "jobs.imap_poll.enqueue_due_imap_polls",
        "services.sessions.purge_expired_sessions",
        "services.oauth.purge_abandoned_drafts",
        "services.notifications.email.send_due_notification_emails",
    }
    purge = jobs["services.sessions.purge_expired_sessions"]
    assert purge.cron == "43 * * * *" and purge.queue_name in QUEUE_NAMES
    drafts = jobs["services.oauth.purge_abandoned_drafts"]
    assert drafts.cron == "51 * * * *" and drafts.queue_name in QUEUE_NAMES
    for name in ("recover_inbound", "recover_outgoing"):  # well within a 20 s lease + 60 s
        sweep = jobs[f"jobs.sweeps.{name}"]
        assert sweep.interval == 15 and sweep.queue_name in QUEUE_NAMES
    notify = jobs["services.notifications.email.send_due_notification_emails"]
    assert notify.interval == 10 and notify.queue_name == "default"
    due = jobs["jobs.sweeps.send_due_replies"]  # a 10 s undo window sends within 15 s
    assert due.interval == 5 and due.queue_name == "default"
    wake = jobs["jobs.sweeps.wake_snoozed"]
    assert wake.interval == 60 and wake.queue_name in QUEUE_NAMES
    job = jobs["jobs.sweeps.incinerate_processed_raw_emails"]
    assert job.queue_name == "low"
    assert job.queue_name in QUEUE_NAMES  # a queue the workers listen on
    assert job.cron == "17 * * * *"
    assert croniter.is_valid(job.cron)
    wait = job.next_enqueue_time - datetime.now(UTC)
    assert timedelta(0) < wait <= timedelta(hours=1)  # hourly
    assert job.job_options["job_timeout"] == 1800
    assert callable(job.func)
