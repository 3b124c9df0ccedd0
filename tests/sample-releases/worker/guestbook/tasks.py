"""Background jobs, run by `rq worker guestbook` (RQ reads REDIS_URL from the environment)."""
import os
import time

import sqlalchemy as sa

# Which code ran a job: the worker-2 release changes it.
MARKER = "worker-1"

_engine = None


def add_entry(token):
    """Takes a moment, like a real job, then signs the guestbook as MARKER with TOKEN."""
    global _engine
    if _engine is None:
        _engine = sa.create_engine(os.environ["DATABASE_URL"], pool_pre_ping=True)
    time.sleep(0.5)
    with _engine.begin() as db:
        db.execute(
            sa.text("INSERT INTO entries (author, message, created_at) VALUES (:author, :message, now())"),
            {"author": MARKER, "message": token},
        )
    return MARKER
