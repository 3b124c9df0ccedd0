from flask import Blueprint, current_app, jsonify, redirect, render_template, request, url_for
from sqlalchemy import text

from . import db
from .models import Entry

bp = Blueprint("guestbook", __name__)


@bp.route("/", methods=["GET", "POST"])
def index():
    if request.method == "POST":
        author = request.form.get("author", "").strip()[:64] or "anonymous"
        message = request.form.get("message", "").strip()[:500]
        if message:
            db.session.add(Entry(author=author, message=message))
            db.session.commit()
        return redirect(url_for("guestbook.index"))
    entries = db.session.scalars(
        db.select(Entry).order_by(Entry.id.desc()).limit(current_app.config["ENTRIES_PER_PAGE"])
    ).all()
    total = db.session.scalar(db.select(db.func.count(Entry.id)))
    backend = db.engine.url.get_backend_name()
    return render_template("index.html", entries=entries, total=total, backend=backend)


@bp.route("/healthz")
def healthz():
    db.session.execute(text("SELECT 1"))
    return jsonify(
        status="ok",
        database=db.engine.url.get_backend_name(),
        url=url_for("guestbook.index", _external=True),
    )
