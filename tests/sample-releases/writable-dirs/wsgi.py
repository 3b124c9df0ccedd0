"""WSGI entry point of a guestbook that, like many apps, logs to logs/app.log next to its code
(created at import time) and keeps uploads in uploads/, which the repository ships."""
import logging
import os

from guestbook import create_app

LOG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "logs")
os.makedirs(LOG_DIR, exist_ok=True)

app = create_app()
app.logger.addHandler(logging.FileHandler(os.path.join(LOG_DIR, "app.log")))
app.logger.warning("guestbook started")
