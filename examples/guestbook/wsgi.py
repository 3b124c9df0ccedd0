"""WSGI entry point: gunicorn wsgi:app"""
from guestbook import create_app

app = create_app()
