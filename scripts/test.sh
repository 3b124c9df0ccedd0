#!/usr/bin/env bash
# Run the collection's tests: yamllint, ansible-lint, the plugins' unit tests, then Molecule.
#   scripts/test.sh                 everything (what CI runs)
#   scripts/test.sh nginx           one Molecule scenario (after the linters are skipped)
#   scripts/test.sh --lint          linters and unit tests only
# FLASKSTACK_DISTRO=trixie picks Debian 13 for the scenarios (default: bookworm).
# Sets up everything it needs on a fresh Debian machine first (scripts/testbed.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Scenarios run by default, in order: one per role, then the whole stack on Debian 12 and 13.
ALL_SCENARIOS=${FLASKSTACK_SCENARIOS:-"common base postgresql app gunicorn nginx logging default default@trixie"}

distros="bookworm"
case " $* $ALL_SCENARIOS " in *trixie*) distros="bookworm trixie" ;; esac
[ "${FLASKSTACK_DISTRO:-bookworm}" = trixie ] && distros="bookworm trixie"
export FLASKSTACK_DISTROS="$distros"
# shellcheck source=scripts/testbed.sh
. scripts/testbed.sh
testbed_setup

lint() {
  echo "== yamllint"
  yamllint --strict .
  echo "== ansible-lint (production profile)"
  ansible-lint --profile production --offline
  if [ -d tests/unit ]; then
    echo "== unit tests"
    python -m pytest -q -p no:cacheprovider tests/unit
  fi
}

scenario() {
  local name=${1%@*} distro=${FLASKSTACK_DISTRO:-bookworm}
  [ "$1" != "$name" ] && distro=${1#*@}
  echo "== molecule test -s $name ($distro)"
  local start=$SECONDS
  FLASKSTACK_DISTRO=$distro molecule test -s "$name"
  echo "== $name ($distro) passed in $((SECONDS - start)) s"
}

case "${1:-}" in
  "")
    lint
    passed=0
    for s in $ALL_SCENARIOS; do scenario "$s"; passed=$((passed + 1)); done
    echo "scenarios: $passed passed, 0 failed"
    ;;
  --lint) lint ;;
  *) for s in "$@"; do scenario "$s"; done ;;
esac
