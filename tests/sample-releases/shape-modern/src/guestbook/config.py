"""Settings, read from the environment (and from a .env file beside the code, if any)."""
import os

from dotenv import load_dotenv

basedir = os.path.abspath(os.path.dirname(os.path.dirname(__file__)))
load_dotenv(os.path.join(basedir, ".env"))


class Config:
    SECRET_KEY = os.environ.get("SECRET_KEY", "dev-only-not-secret")
    SQLALCHEMY_DATABASE_URI = os.environ.get(
        "DATABASE_URL", "sqlite:///" + os.path.join(basedir, "guestbook.db")
    )
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    GUESTBOOK_TITLE = os.environ.get("GUESTBOOK_TITLE", "Guestbook")
    ENTRIES_PER_PAGE = 20
    # External URLs (links in mails, /healthz's "url") are built for the public name.
    SERVER_NAME = os.environ.get("SERVER_NAME")
    PREFERRED_URL_SCHEME = "https"


class DevelopmentConfig(Config):
    DEBUG = True


class ProductionConfig(Config):
    @classmethod
    def check(cls):
        missing = [name for name in ("SECRET_KEY", "DATABASE_URL", "SERVER_NAME") if not os.environ.get(name)]
        if missing:
            raise RuntimeError("production settings missing: " + ", ".join(missing))


config = {
    "development": DevelopmentConfig,
    "production": ProductionConfig,
    "default": DevelopmentConfig,
}
