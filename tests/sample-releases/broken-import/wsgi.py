"""WSGI entry point: gunicorn wsgi:app"""
from guestbook import create_app
from guestbook.reports import weekly_digest  # noqa: F401  (a module this release forgot)

app = create_app()
