#!/usr/bin/env bash
# Run the collection's tests: the linters' stage (yamllint, ansible-lint, the plugins' unit
# tests, the changelog fragments, the roles' README variable tables, the Galaxy tarball and its
# documentation, ansible-test sanity and units) and, beside it, the Molecule scenarios. The
# lowest ansible-core the collection declares (requirements-dev.txt) runs all of it; the newest
# (requirements-newest.txt) runs ansible-lint, ansible-test sanity and the galaxy scenario.
#   scripts/test.sh                 everything (what CI runs)
#   scripts/test.sh nginx           one Molecule scenario, output on the terminal (no linters)
#   scripts/test.sh nginx@trixie    the same on Debian 13
#   scripts/test.sh --lint          the linters' stage only
# FLASKSTACK_DISTRO=trixie picks Debian 13 for scenarios named without @distro (default:
# bookworm). The full run runs FLASKSTACK_JOBS scenarios at a time (default 2), each logged to
# .cache/test-logs/<scenario>.log; the log of a failed scenario is shown at the end.
# Sets up everything it needs on a fresh Debian machine first (scripts/testbed.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Scenarios of the full run: one per role on Debian 12, the whole stack on Debian 13
# (default@trixie) and, from the built Galaxy tarball, on Debian 12 (galaxy), updates, real-app
# shapes (shapes, legacy), Redis with an RQ worker (worker) and the fleet (multihost). Longest
# first, so the parallel run ends with short ones. The whole stack's own scenario on Debian 12 (default) runs on demand:
# scripts/test.sh default.
ALL_SCENARIOS=${FLASKSTACK_SCENARIOS:-"update multihost app shapes legacy mysql default@trixie worker galaxy supervisor base gunicorn nginx letsencrypt postgresql logging loadbalancer common"}
JOBS=${FLASKSTACK_JOBS:-2}
LOG_DIR=.cache/test-logs

distros="bookworm"
case " ${*:-$ALL_SCENARIOS} " in *trixie*) distros="bookworm trixie" ;; esac
[ "${FLASKSTACK_DISTRO:-bookworm}" = trixie ] && distros="bookworm trixie"
export FLASKSTACK_DISTROS="$distros"
# shellcheck source=scripts/testbed.sh
. scripts/testbed.sh
testbed_setup

# The ansible-core versions the collection declares (meta/runtime.yml) are both tested: the
# lowest (.venv, requirements-dev.txt) by everything, the newest (.venv-newest,
# requirements-newest.txt, made when first needed) by ansible-lint, ansible-test sanity and
# these scenarios, the whole stack from the tarball (run with .venv-newest's tools on PATH).
NEWEST_SCENARIOS=${FLASKSTACK_NEWEST_SCENARIOS:-"galaxy"}
export NEWEST_SCENARIOS
export -f log venv_install testbed_newest_python testbed_newest_venv

# Scenarios run with Mitogen's strategy (README, "Faster runs with Mitogen"): most of them, as
# their time is mostly Ansible's cost per task. Without it: site.yml's whole stack with the
# hardening (default@trixie), update.yml and rollback.yml on real-app shapes (shapes), and the
# roles site.yml leaves off by default (mysql, letsencrypt, loadbalancer).
# FLASKSTACK_MITOGEN=1: all of them.
MITOGEN_SCENARIOS=${FLASKSTACK_MITOGEN_SCENARIOS:-"galaxy update multihost app legacy worker supervisor base gunicorn nginx postgresql logging common"}
mitogen_strategy_plugins() {
  "$1" -c 'import ansible_mitogen, os; print(os.path.dirname(ansible_mitogen.__file__) + "/plugins/strategy")'
}
MITOGEN_STRATEGY_PLUGINS=$(mitogen_strategy_plugins python)
export MITOGEN_SCENARIOS MITOGEN_STRATEGY_PLUGINS
export -f mitogen_strategy_plugins

# with_newest COMMAND...: COMMAND with .venv-newest's tools (the newest ansible-core) on PATH.
with_newest() {
  env PATH="$FLASKSTACK_NEWEST_VENV/bin:$PATH" VIRTUAL_ENV="$FLASKSTACK_NEWEST_VENV" "$@"
}

lint() {
  echo "== yamllint"
  yamllint --strict .
  echo "== ansible-lint (production profile), $(ansible --version | sed -n 1p)"
  ansible-lint --profile production --offline
  testbed_newest_venv
  echo "== ansible-lint (production profile), $(with_newest ansible --version | sed -n 1p)"
  with_newest ansible-lint --profile production --offline
  if [ -d tests/unit ]; then
    echo "== unit tests"
    python -m pytest -q -p no:cacheprovider tests/unit
  fi
  echo "== collections used are declared (galaxy.yml, requirements.yml)"
  python scripts/collection_deps.py
  echo "== changelog fragments (antsibull-changelog lint)"
  scripts/changelog.sh --lint
  echo "== role READMEs' variable tables are what meta/argument_specs.yml makes (aar-doc)"
  scripts/role-docs.sh --lint
  echo "== Galaxy tarball: build, install, ansible-doc, execution environment"
  tests/galaxy/test-build.sh
  echo "== ansible-test sanity and units, $(grep '^ansible-core==' requirements-dev.txt)"
  tests/sanity.sh
  echo "== ansible-test sanity, $(grep '^ansible-core==' requirements-newest.txt)"
  FLASKSTACK_SANITY_REQUIREMENTS=requirements-newest.txt \
    FLASKSTACK_SANITY_PYTHON="$FLASKSTACK_NEWEST_VENV/bin/python" tests/sanity.sh --sanity-only
}

# One scenario, "name" or "name@distro". Runs of the same scenario on different distros
# share Molecule's state directory, so they take turns (flock).
scenario() {
  local name=${1%@*} distro=${FLASKSTACK_DISTRO:-bookworm}
  [ "$1" != "$name" ] && distro=${1#*@}
  mkdir -p .cache/locks
  # Mitogen accelerates the connection named "docker", not its FQCN (.config/molecule/config.yml).
  local newest=() strategy_plugins=$MITOGEN_STRATEGY_PLUGINS
  if [[ " $NEWEST_SCENARIOS " == *" $1 "* ]]; then
    testbed_newest_venv || return 1
    newest=(PATH="$FLASKSTACK_NEWEST_VENV/bin:$PATH" VIRTUAL_ENV="$FLASKSTACK_NEWEST_VENV")
    strategy_plugins=$(mitogen_strategy_plugins "$FLASKSTACK_NEWEST_VENV/bin/python")
  fi
  local mitogen=()
  if [ "${FLASKSTACK_MITOGEN:-0}" = 1 ] || [[ " $MITOGEN_SCENARIOS " == *" $1 "* ]]; then
    mitogen=(ANSIBLE_STRATEGY_PLUGINS="$strategy_plugins" ANSIBLE_STRATEGY=mitogen_linear
      FLASKSTACK_ANSIBLE_CONNECTION=docker)
    echo "== with Mitogen"
  fi
  # The port on 127.0.0.1 where the shared platform's sshd is published: one per scenario, from
  # its place among molecule/'s directories (multi-host scenarios name their own ports).
  local ssh_port=2260 dir
  for dir in molecule/*/; do
    [ "$dir" = "molecule/$name/" ] && break
    ssh_port=$((ssh_port + 1))
  done
  echo "== molecule test -s $name ($distro), $(env "${newest[@]}" ansible --version | sed -n 1p)"
  local start=$SECONDS
  # A hung test fails its scenario after FLASKSTACK_SCENARIO_TIMEOUT seconds (default 3600)
  # instead of using up the whole run.
  # Explicit status: set -e does not apply inside a function called from an `if`.
  if ! env "${newest[@]}" "${mitogen[@]}" FLASKSTACK_DISTRO="$distro" FLASKSTACK_SSH_PORT="$ssh_port" flock ".cache/locks/$name.lock" \
    timeout --kill-after=30 "${FLASKSTACK_SCENARIO_TIMEOUT:-3600}" molecule test -s "$name"; then
    echo "== $name ($distro) FAILED after $((SECONDS - start)) s"
    return 1
  fi
  echo "== $name ($distro) passed in $((SECONDS - start)) s"
}

# One scenario of the full run, logged to a file; prints one line.
scenario_logged() {
  local log="$LOG_DIR/${1/@/-}.log" start=$SECONDS
  if scenario "$1" >"$log" 2>&1; then
    echo "PASS $1 in $((SECONDS - start)) s"
  else
    echo "FAIL $1 after $((SECONDS - start)) s (log: $log)"
    return 1
  fi
}

case "${1:-}" in
  "")
    start=$SECONDS
    rm -rf "$LOG_DIR" && mkdir -p "$LOG_DIR"
    # The linters' stage runs beside the scenarios; its result counts like theirs.
    echo "== linters' stage in the background (log: $LOG_DIR/lint.log)"
    lint >"$LOG_DIR/lint.log" 2>&1 &
    lint_pid=$!
    echo "== Molecule: $(wc -w <<<"$ALL_SCENARIOS") scenarios, $JOBS at a time"
    export -f scenario scenario_logged
    export LOG_DIR
    status=0
    # shellcheck disable=SC2086
    printf '%s\n' $ALL_SCENARIOS | xargs -P "$JOBS" -I{} bash -c 'scenario_logged "$1"' _ {} \
      | tee "$LOG_DIR/summary" || status=$?
    lint_status=0
    wait "$lint_pid" || lint_status=$?
    if [ "$lint_status" -eq 0 ]; then
      echo "PASS linters' stage"
    else
      echo "FAIL linters' stage (log: $LOG_DIR/lint.log, last 80 lines below)"
      tail -n 80 "$LOG_DIR/lint.log"
    fi
    passed=$(grep -c '^PASS' "$LOG_DIR/summary" || true)
    failed=$(grep -c '^FAIL' "$LOG_DIR/summary" || true)
    for log in $(grep '^FAIL' "$LOG_DIR/summary" | sed 's/.*(log: \(.*\))/\1/'); do
      echo "== $log (last 150 lines)"
      tail -n 150 "$log"
    done
    echo "scenarios: $passed passed, $failed failed; whole run $((SECONDS - start)) s"
    [ "$lint_status" -eq 0 ] && [ "$status" -eq 0 ] && [ "$failed" -eq 0 ] \
      && [ "$passed" -eq "$(wc -w <<<"$ALL_SCENARIOS")" ]
    ;;
  --lint) lint ;;
  *) for s in "$@"; do scenario "$s" || exit 1; done ;;
esac
