from datetime import datetime, timezone

from . import db


class Entry(db.Model):
    __tablename__ = "entries"

    id = db.Column(db.Integer, primary_key=True)
    author = db.Column(db.String(64), nullable=False)
    message = db.Column(db.String(500), nullable=False)
    likes = db.Column(db.Integer, nullable=False, server_default="0")
    created_at = db.Column(
        db.DateTime(timezone=True), nullable=False, default=lambda: datetime.now(timezone.utc)
    )
