#!/usr/bin/env bash
# The demo: a local container stands in for a fresh Debian server, playbooks/site.yml deploys
# the sample app (examples/guestbook) on it over SSH, and the site answers on 127.0.0.1 only.
# The container is first prepared over `docker exec` like a fresh cloud server (sshd, a
# "debian" user with sudo and the demo's key; scripts/cloud-login.yml); site.yml logs in as
# that user the first time and as the deploy user it creates on every later run.
#   scripts/demo.sh            set up (first run), deploy, print the URL; re-runs are idempotent
#   scripts/demo.sh --destroy  remove the demo container and its generated secrets
# FLASKSTACK_DISTRO=trixie deploys on Debian 13; FLASKSTACK_DEMO_HTTPS_PORT (8443) and
# FLASKSTACK_DEMO_HTTP_PORT (8080) pick the published ports.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

distro=${FLASKSTACK_DISTRO:-bookworm}
export FLASKSTACK_DISTRO=$distro FLASKSTACK_DISTROS=$distro
# shellcheck source=scripts/testbed.sh
. scripts/testbed.sh

if [ "${1:-}" = "--destroy" ]; then
  testbed_docker
  # Close the SSH connections kept open to the demo (ControlPersist; inventories/demo/hosts.yml).
  for socket in .cache/demo/ssh-*; do
    [ -S "$socket" ] && ssh -O exit -S "$socket" flaskstack-demo >/dev/null 2>&1 || true
  done
  docker rm -f flaskstack-demo >/dev/null 2>&1 || true
  rm -rf .cache/demo
  echo "demo removed"
  exit 0
fi

testbed_setup
# The preparation (the test bed's, then the cloud image's login, which it ends with) runs
# once per container: it is not a deployment, and re-runs report only what site.yml changes.
skip=()
if docker exec flaskstack-demo test -e /etc/sudoers.d/90-cloud-init-users >/dev/null 2>&1; then
  skip=(--skip-tags demo_prepare)
fi
ansible-playbook -i inventories/demo/hosts.yml scripts/demo.yml "${skip[@]}"
port=${FLASKSTACK_DEMO_HTTPS_PORT:-8443}
cat <<DONE

The sample app is served at https://127.0.0.1:$port/ (self-signed certificate: curl -k,
or accept it in the browser). http://127.0.0.1:${FLASKSTACK_DEMO_HTTP_PORT:-8080}/ redirects to
https://localhost:$port/.
Remove the demo with: scripts/demo.sh --destroy
DONE
