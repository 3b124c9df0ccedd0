#!/usr/bin/env bash
# The classic manual recipe for a Flask app on Debian, as tutorials write it, for comparison
# with flaskstack.deploy (benchmarks/run.sh runs it as root inside a fresh server container):
#   manual-recipe.sh install SERVER_NAME [VERSION]   packages, database, code, venv, .env,
#       migrations, a gunicorn systemd unit, nginx with a self-signed certificate and the
#       HTTP->HTTPS redirect, ufw
#   manual-recipe.sh update VERSION                  the classic update: check out the new code
#       in place, pip install, stop gunicorn, migrate, start gunicorn
# The sample app's repository is at /srv/git/guestbook.git (the test bed's preparation).
set -euo pipefail

APP=guestbook
REPO=file:///srv/git/guestbook.git
HOME_DIR=/home/$APP
CODE=$HOME_DIR/app
export DEBIAN_FRONTEND=noninteractive

as_app() { runuser -u "$APP" -- "$@"; }
flask_cli() { as_app sh -c "cd $CODE && set -a && . ./.env && set +a && exec venv/bin/flask $*"; }

install() {
  local name=$1 version=${2:-v1.0}

  apt-get update -q
  apt-get install -y -q postgresql nginx python3-venv python3-dev git openssl ufw

  # The app's user; nginx must be able to read the static files under its home.
  id "$APP" >/dev/null 2>&1 || useradd --create-home --shell /usr/sbin/nologin "$APP"
  chmod 0755 "$HOME_DIR"

  # The database and its owner.
  local password
  password=$(openssl rand -hex 16)
  runuser -u postgres -- psql -q -c "CREATE ROLE $APP LOGIN PASSWORD '$password'"
  runuser -u postgres -- createdb -O "$APP" "$APP"

  # The code, its virtualenv and its settings.
  as_app git clone -q --branch "$version" "$REPO" "$CODE"
  as_app python3 -m venv "$CODE/venv"
  as_app "$CODE/venv/bin/pip" install -q -r "$CODE/requirements.txt" gunicorn psycopg2-binary
  as_app sh -c "umask 077 && cat >$CODE/.env" <<ENV
FLASK_APP=wsgi.py
FLASK_CONFIG=production
SECRET_KEY=$(openssl rand -hex 32)
DATABASE_URL=postgresql://$APP:$password@127.0.0.1/$APP
ENV
  flask_cli db upgrade

  # gunicorn under systemd, on loopback.
  cat >/etc/systemd/system/$APP.service <<UNIT
[Unit]
Description=gunicorn serving $APP
After=network.target postgresql.service

[Service]
User=$APP
Group=$APP
WorkingDirectory=$CODE
EnvironmentFile=$CODE/.env
ExecStart=$CODE/venv/bin/gunicorn --workers $((2 * $(nproc) + 1)) --bind 127.0.0.1:8000 wsgi:app
Restart=always

[Install]
WantedBy=multi-user.target
UNIT
  systemctl daemon-reload
  systemctl enable --now "$APP.service"

  # nginx: a self-signed certificate, HTTP redirected to HTTPS, static files served directly.
  openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=$name" \
    -keyout /etc/ssl/private/$APP.key -out /etc/ssl/certs/$APP.crt 2>/dev/null
  chmod 0600 /etc/ssl/private/$APP.key
  cat >/etc/nginx/sites-available/$APP <<SITE
server {
    listen 80;
    server_name $name;
    return 301 https://\$host\$request_uri;
}

server {
    listen 443 ssl;
    server_name $name;
    ssl_certificate /etc/ssl/certs/$APP.crt;
    ssl_certificate_key /etc/ssl/private/$APP.key;

    location /static/ {
        alias $CODE/guestbook/static/;
        expires 30d;
    }

    location / {
        proxy_pass http://127.0.0.1:8000;
        proxy_set_header Host \$host;
        proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto \$scheme;
    }
}
SITE
  ln -sf /etc/nginx/sites-available/$APP /etc/nginx/sites-enabled/$APP
  rm -f /etc/nginx/sites-enabled/default
  nginx -t -q
  systemctl reload nginx

  # The firewall: SSH, HTTP and HTTPS. A container's /proc/sys is read-only, so ufw must not
  # write its sysctl settings there (the only change a real server would not need).
  sed -i 's/^IPT_SYSCTL=.*/IPT_SYSCTL=/' /etc/default/ufw
  ufw allow ssh >/dev/null
  ufw allow 'Nginx Full' >/dev/null
  ufw --force enable >/dev/null

  curl -fsS -k --resolve "$name:443:127.0.0.1" "https://$name/" >/dev/null
}

update() {
  local version=$1
  as_app git -C "$CODE" fetch -q --tags
  as_app git -C "$CODE" checkout -q "$version"
  as_app "$CODE/venv/bin/pip" install -q -r "$CODE/requirements.txt"
  systemctl stop "$APP.service"
  flask_cli db upgrade
  systemctl start "$APP.service"
}

case "${1:-}" in
  install) shift; install "$@" ;;
  update) shift; update "$@" ;;
  *) echo "usage: $0 install SERVER_NAME [VERSION] | update VERSION" >&2; exit 2 ;;
esac
