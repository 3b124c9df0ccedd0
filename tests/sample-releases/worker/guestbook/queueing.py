"""Routes that hand work to the RQ worker: POST /jobs enqueues, GET /jobs/<id> shows the result."""
import os

from flask import abort, jsonify, request
from redis import Redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job

from .views import bp

_redis = None


def connection():
    global _redis
    if _redis is None:
        _redis = Redis.from_url(os.environ["REDIS_URL"])
    return _redis


@bp.route("/jobs", methods=["POST"])
def enqueue():
    token = request.form.get("token", "").strip()[:500] or "job"
    job = Queue("guestbook", connection=connection()).enqueue("guestbook.tasks.add_entry", token)
    return jsonify(id=job.id), 202


@bp.route("/jobs/<job_id>")
def show(job_id):
    try:
        job = Job.fetch(job_id, connection=connection())
    except NoSuchJobError:
        abort(404)
    return jsonify(id=job.id, status=job.get_status(), result=job.return_value())
