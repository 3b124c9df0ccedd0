#!/usr/bin/env bash
# Prepare this machine to run the collection's demo and tests, idempotently:
#   - Debian packages the test bed needs (Docker engine, debootstrap, git, rsync);
#   - a running Docker engine (an engine that already answers is used as it is);
#   - .venv with the pinned Python tools from requirements-dev.txt (the lowest ansible-core
#     the collection declares), and on request (testbed_newest_venv) .venv-newest with those
#     of requirements-newest.txt (the newest), made with Python 3.12 or later;
#   - systemd-capable Debian base images built locally (debootstrap + docker import);
#   - host-side download caches for the test containers (pip's shared, apt's per scenario);
#   - the collection made importable as flaskstack.deploy from this checkout.
# Source it (". scripts/testbed.sh") to get the environment, or run it to only set up.
# Distros to build: FLASKSTACK_DISTROS (default "bookworm trixie").
set -euo pipefail

FLASKSTACK_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FLASKSTACK_VENV=${FLASKSTACK_VENV:-$FLASKSTACK_ROOT/.venv}
FLASKSTACK_NEWEST_VENV=${FLASKSTACK_NEWEST_VENV:-$FLASKSTACK_ROOT/.venv-newest}
FLASKSTACK_DISTROS=${FLASKSTACK_DISTROS:-bookworm trixie}
FLASKSTACK_IMAGE_REPO=${FLASKSTACK_IMAGE_REPO:-flaskstack/debian-systemd}
FLASKSTACK_TESTBED_CACHE=${FLASKSTACK_TESTBED_CACHE:-/var/tmp/flaskstack-testbed}
FLASKSTACK_MIRROR=${FLASKSTACK_MIRROR:-http://deb.debian.org/debian}
export FLASKSTACK_ROOT FLASKSTACK_VENV FLASKSTACK_NEWEST_VENV FLASKSTACK_IMAGE_REPO FLASKSTACK_TESTBED_CACHE

log() { printf '[testbed] %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

testbed_packages() {
  local missing=()
  command -v docker >/dev/null 2>&1 || missing+=(docker.io)
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  command -v git >/dev/null 2>&1 || missing+=(git)
  command -v rsync >/dev/null 2>&1 || missing+=(rsync)
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
  # A docker client alone is not an engine: install Debian's engine when no dockerd exists.
  if ! docker info >/dev/null 2>&1 && ! command -v dockerd >/dev/null 2>&1; then
    missing+=(docker.io)
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

testbed_docker() {
  if docker info >/dev/null 2>&1; then
    return 0
  fi
  log "starting the Docker engine (log: /var/log/flaskstack-dockerd.log)"
  # In a session of its own, so the engine outlives the shell (and process group) that started it.
  as_root setsid -f sh -c 'exec dockerd >>/var/log/flaskstack-dockerd.log 2>&1 </dev/null'
  local i
  for i in $(seq 1 60); do
    docker info >/dev/null 2>&1 && return 0
    sleep 1
  done
  log "the Docker engine did not answer within 60 s; see /var/log/flaskstack-dockerd.log"
  return 1
}

# venv_install VENV REQUIREMENTS PYTHON: VENV with the pins of REQUIREMENTS, made with PYTHON;
# kept while REQUIREMENTS is unchanged.
venv_install() {
  local venv=$1 requirements=$2 python=$3
  local stamp="$venv/.$(basename "$requirements" .txt).sha256" want
  want=$(sha256sum "$requirements" | cut -d' ' -f1)
  if [ -x "$venv/bin/molecule" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  log "installing the pinned Python tools of $(basename "$requirements") into $venv"
  local start=$SECONDS
  "$python" -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip >/dev/null
  "$venv/bin/pip" install -q -r "$requirements" 2>&1 | { grep -v "^WARNING: Location" || true; }
  echo "$want" >"$stamp"
  log "installed in $((SECONDS - start)) s"
}

testbed_venv() {
  venv_install "$FLASKSTACK_VENV" "$FLASKSTACK_ROOT/requirements-dev.txt" python3
}

# A Python for the newest ansible-core's controller (3.12 or later): FLASKSTACK_NEWEST_PYTHON,
# else the oldest such python3.1x on PATH (Debian 13 has python3.13), else one of pyenv's.
testbed_newest_python() {
  local candidate
  for candidate in ${FLASKSTACK_NEWEST_PYTHON:-} python3.12 python3.13 python3.14 \
    $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -V); do
    if command -v "$candidate" >/dev/null 2>&1 \
      && "$candidate" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  log "the newest ansible-core (requirements-newest.txt) needs Python 3.12 or later on the controller;"
  log "none found: install one (e.g. Debian 13's python3.13, or pyenv) or set FLASKSTACK_NEWEST_PYTHON"
  return 1
}

# .venv-newest with requirements-newest.txt, for the linters' stage and the galaxy scenario;
# made when first asked for (they may ask at the same time: one makes it, the other waits).
testbed_newest_venv() {
  local python
  python=$(testbed_newest_python) || return 1
  mkdir -p "$FLASKSTACK_ROOT/.cache/locks"
  (
    flock 9
    venv_install "$FLASKSTACK_NEWEST_VENV" "$FLASKSTACK_ROOT/requirements-newest.txt" "$python"
  ) 9>"$FLASKSTACK_ROOT/.cache/locks/venv-newest.lock"
}

# The image recipe; its hash is stored as a label so a changed recipe rebuilds the image.
# Bump _image_recipe_version when the build steps below change.
# OpenSSH's server and sudo, as Debian's cloud images ship them: the tests log in over SSH.
_image_packages="python3,python3-apt,systemd,systemd-sysv,dbus,ca-certificates,procps,iproute2,gnupg,openssh-server,sudo"
_image_recipe_version=3

testbed_image() {
  local suite=$1 image="$FLASKSTACK_IMAGE_REPO:$1"
  local recipe cas
  # This machine's extra CA certificates (an intercepting proxy's): trusted in the image, so
  # that the prepare step (molecule/resources/prepare.yml), which checks for them, finds them.
  cas=$(cat /usr/local/share/ca-certificates/*.crt 2>/dev/null | sha256sum | cut -c1-16)
  recipe=$(printf '%s|%s|%s|%s|%s' "$suite" "$_image_packages" "$_image_recipe_version" "$FLASKSTACK_MIRROR" "$cas" | sha256sum | cut -c1-16)
  if [ "$(docker image inspect -f '{{ index .Config.Labels "flaskstack.recipe" }}' "$image" 2>/dev/null)" = "$recipe" ]; then
    return 0
  fi
  local dir
  dir=$(mktemp -d "/var/tmp/flaskstack-rootfs-$suite.XXXXXX")
  log "building $image with debootstrap (about a minute)"
  as_root debootstrap --variant=minbase --include="$_image_packages" "$suite" "$dir" "$FLASKSTACK_MIRROR" \
    >"$dir.log" 2>&1 || { log "debootstrap failed, see $dir.log"; return 1; }
  # Real servers track the point-release and security archives too.
  as_root sh -c "cat >'$dir/etc/apt/sources.list'" <<SOURCES
deb $FLASKSTACK_MIRROR $suite main
deb $FLASKSTACK_MIRROR $suite-updates main
deb http://deb.debian.org/debian-security $suite-security main
SOURCES
  if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    as_root cp /usr/local/share/ca-certificates/*.crt "$dir/usr/local/share/ca-certificates/"
    as_root chroot "$dir" update-ca-certificates >>"$dir.log" 2>&1
  fi
  # Lists are fetched by the roles; an old mtime keeps apt's cache_valid_time from skipping that.
  as_root sh -c "rm -rf '$dir'/var/lib/apt/lists/* '$dir'/var/cache/apt/*.bin && touch -d @0 '$dir/var/lib/apt/lists'"
  as_root sh -c ": >'$dir/etc/machine-id'"
  # A container's disk is thrown away with it: dpkg need not fsync every file it unpacks, as in
  # Debian's own container images (docker-apt-speedup). The roles' work is the same.
  as_root sh -c "echo force-unsafe-io >'$dir/etc/dpkg/dpkg.cfg.d/flaskstack-testbed-speedup'"
  as_root tar -C "$dir" -c . | docker import \
    -c 'CMD ["/lib/systemd/systemd"]' \
    -c "LABEL flaskstack.recipe=$recipe" - "$image" >/dev/null
  as_root rm -rf "$dir" "$dir.log"
}

testbed_caches() {
  # Download caches mounted into the test containers (see .config/molecule/config.yml):
  # pip's, shared, and apt's, one per scenario (or the demo) and distro.
  mkdir -p "$FLASKSTACK_TESTBED_CACHE/pip"
  chmod 1777 "$FLASKSTACK_TESTBED_CACHE/pip"
  local suite name
  for suite in $FLASKSTACK_DISTROS; do
    for name in demo $(cd "$FLASKSTACK_ROOT/molecule" && ls -d -- */ | tr -d /); do
      mkdir -p "$FLASKSTACK_TESTBED_CACHE/apt-$suite-$name/partial"
    done
  done
}

testbed_collection() {
  # ansible-playbook and molecule find flaskstack.deploy here, pointing at this checkout.
  local path="$FLASKSTACK_ROOT/.cache/collections/ansible_collections/flaskstack"
  mkdir -p "$path"
  ln -sfn "$FLASKSTACK_ROOT" "$path/deploy"
  export ANSIBLE_COLLECTIONS_PATH="$FLASKSTACK_ROOT/.cache/collections"
}

testbed_env() {
  # shellcheck disable=SC1091
  . "$FLASKSTACK_VENV/bin/activate"
  testbed_collection
  export ANSIBLE_CONFIG="$FLASKSTACK_ROOT/ansible.cfg"
  export ANSIBLE_FORCE_COLOR=${ANSIBLE_FORCE_COLOR:-0}
  export PY_COLORS=0
}

testbed_setup() {
  testbed_packages
  testbed_docker
  testbed_venv
  testbed_caches
  local suite
  for suite in $FLASKSTACK_DISTROS; do
    testbed_image "$suite"
  done
  testbed_env
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  testbed_setup
  log "ready: images $(for s in $FLASKSTACK_DISTROS; do printf '%s:%s ' "$FLASKSTACK_IMAGE_REPO" "$s"; done)"
fi
