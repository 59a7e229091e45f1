"""Admin system page: what is running, and a live round trip through the job queue."""

from __future__ import annotations

from flask import Blueprint, abort, render_template
from redis.exceptions import RedisError
from rq.exceptions import NoSuchJobError
from rq.job import Job

from blueprints.guards import admin_required
from extensions import get_queue, get_redis, get_settings
from jobs.diagnostics import worker_ping
from services.backlog import describe_age, gather_backlog
from services.health import check_workers
from services.health_servers import check_redis

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.route("/system")
@admin_required
def system():
    redis_check, connection = check_redis(get_settings())
    backlog = gather_backlog(connection)
    checks = [redis_check, *check_workers(connection, backlog)]
    return render_template(
        "admin/system.html", checks=checks, backlog=backlog, describe_age=describe_age
    )


@bp.route("/system/worker-check", methods=["POST"])
@admin_required
def start_worker_check():
    try:
        job = get_queue("default").enqueue(worker_ping, result_ttl=600, job_timeout=30)
    except (RedisError, OSError) as exc:
        return render_template(
            "admin/_worker_check.html", error=f"Redis is unreachable: {exc}"
        ), 503
    return render_template("admin/_worker_check.html", job=job)


@bp.route("/system/worker-check/<job_id>")
@admin_required
def worker_check(job_id: str):
    try:
        job = Job.fetch(job_id, connection=get_redis())
    except NoSuchJobError:
        abort(404, "That check expired; start a new one.")
    return render_template("admin/_worker_check.html", job=job)
