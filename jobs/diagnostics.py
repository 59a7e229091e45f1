"""A round trip through the queue, used by the admin system page and `flask doctor`."""

from __future__ import annotations

import os
import socket

from rq import get_current_job
from sqlalchemy import func, select

from extensions import db
from models import User, utcnow


def worker_ping() -> dict:
    """Prove a worker runs jobs with the app's database: report who ran it and what it saw."""
    job = get_current_job()
    users = db.session.scalar(select(func.count(User.id)))
    result = {
        "job_id": job.id if job else None,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "users": users,
        "finished_at": utcnow().isoformat(),
    }
    return result
