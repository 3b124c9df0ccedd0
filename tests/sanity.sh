#!/usr/bin/env bash
# ansible-test on what the collection ships: the tarball of `ansible-galaxy collection build`
# (galaxy.yml's build_ignore leaves out the test bed, the sample app and the demo), unpacked
# in the layout ansible-test requires, <tmp>/ansible_collections/flaskstack/deploy:
#   - sanity tests for one Python, 3.11 by default (ignores: tests/sanity/ignore-<ansible-core>.txt);
#   - the unit tests under tests/unit.
# No container images (--local): ansible-test runs in a virtualenv of its own,
# .cache/ansible-test-venv (.cache/ansible-test-venv-newest for requirements-newest.txt), with
# the ansible-core of the requirements file and the tools each test pins (--requirements; the
# first run downloads them, about 10 minutes), so they cannot upset the tools' virtualenvs.
#   tests/sanity.sh                 sanity and units
#   tests/sanity.sh --sanity-only   sanity only
# FLASKSTACK_SANITY_REQUIREMENTS: the requirements file whose ansible-core to use (default
# requirements-dev.txt); FLASKSTACK_SANITY_PYTHON: the Python to run ansible-test with and
# test for, a version whose python3.X is on PATH or an interpreter's path (default 3.11).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
interpreter=${FLASKSTACK_SANITY_PYTHON:-3.11}
case "$interpreter" in
  */*) ;;
  *) interpreter=$(command -v "python$interpreter") ;;
esac
PYTHON=$("$interpreter" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
REQUIREMENTS=${FLASKSTACK_SANITY_REQUIREMENTS:-requirements-dev.txt}

venv=$ROOT/.cache/ansible-test-venv
case "$REQUIREMENTS" in
  *requirements-dev.txt) ;;
  *) venv=$venv-$(basename "$REQUIREMENTS" .txt | sed 's/^requirements-//') ;;
esac
core=$(grep -E '^ansible-core==' "$ROOT/$REQUIREMENTS")
if [ "$(cat "$venv/.ansible-core" 2>/dev/null)" != "$core python$PYTHON" ]; then
  echo "== making $venv ($core, Python $PYTHON)"
  rm -rf "$venv"
  "$interpreter" -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip 2>&1 | { grep -v "^WARNING: Location" || true; }
  "$venv/bin/pip" install -q "$core" 2>&1 | { grep -v "^WARNING: Location" || true; }
  echo "$core python$PYTHON" >"$venv/.ansible-core"
fi

# ansible-test bootstraps pip in each test's virtualenv with a get-pip script from
# ci-files.testing.ansible.com; where that host is out of reach, a stand-in in its cache
# does the same with Python's ensurepip and the package index.
pip_version=$(sed -n "s/^ *pip='\([0-9.]*\)',/\1/p" \
  "$venv"/lib/python3*/site-packages/ansible_test/_internal/python_requirements.py | head -n1)
get_pip=~/.ansible/test/cache/get_pip_${pip_version//./_}.py
if [ ! -s "$get_pip" ]; then
  mkdir -p "$(dirname "$get_pip")"
  if ! curl -fsS --max-time 20 -o "$get_pip" "https://ci-files.testing.ansible.com/ansible-test/get-pip-$pip_version.py"; then
    cat >"$get_pip" <<'GETPIP'
"""Stand-in for get-pip.py: install pip with ensurepip, then the requested packages."""
import subprocess
import sys

args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"])
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install"] + args))
GETPIP
  fi
fi
export PATH="$venv/bin:$PATH"
unset VIRTUAL_ENV ANSIBLE_COLLECTIONS_PATH ANSIBLE_CONFIG

work=$(mktemp -d "${TMPDIR:-/tmp}/flaskstack-sanity.XXXXXX")
trap 'rm -rf "$work"' EXIT
dest="$work/ansible_collections/flaskstack/deploy"
mkdir -p "$dest"
ansible-galaxy collection build --output-path "$work" "$ROOT" >/dev/null
tar -C "$dest" -xzf "$work"/flaskstack-deploy-*.tar.gz
cd "$dest"
# ansible-test checks the files git knows about when it runs in a git work tree.
git init -q && git add -A

echo "== ansible-test sanity (Python $PYTHON)"
ansible-test sanity --local --requirements --python "$PYTHON" --color no 2>&1 \
  | grep -v -e '^WARNING: Location' -e '^Looking in' -e '^Requirement already satisfied'
if [ "${1:-}" != "--sanity-only" ]; then
  echo "== ansible-test units (Python $PYTHON)"
  ansible-test units --local --requirements --python "$PYTHON" --color no 2>&1 \
    | grep -v -e '^WARNING: Location' -e '^Looking in' -e '^Requirement already satisfied'
fi
