"""A small guestbook: the shape of the apps in the Flask deployment literature."""
import os
import time

from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from .config import config

# Stands in for the heavy imports of many real apps (SDKs, models): importing this package
# takes over 5 s, in the service, its probe and every flask command alike.
time.sleep(6)

db = SQLAlchemy()
migrate = Migrate()


def create_app(config_name=None):
    config_name = config_name or os.environ.get("FLASK_CONFIG", "default")
    settings = config[config_name]
    if hasattr(settings, "check"):
        settings.check()
    app = Flask(__name__)
    app.config.from_object(settings)
    db.init_app(app)
    migrate.init_app(app, db)

    from .views import bp

    app.register_blueprint(bp)
    return app
