#!/usr/bin/env bash
# Lynis hardening index of a bare test container and of one hardened by the base role.
# Not part of `molecule test` (Lynis takes minutes). Usage, from the repository root:
#   molecule/base/lynis.sh            # Debian 12; FLASKSTACK_DISTRO=trixie for Debian 13
# It runs `molecule converge -s base` (left running; `molecule destroy -s base` removes it)
# and a throwaway container from the same image for the "before" figure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
distro=${FLASKSTACK_DISTRO:-bookworm}
image="${FLASKSTACK_IMAGE_REPO:-flaskstack/debian-systemd}:$distro"
bare="flaskstack-base-lynis-bare-$distro"
hardened="flaskstack-base-$distro"

# shellcheck source=scripts/testbed.sh
. scripts/testbed.sh
testbed_env

audit() {
  docker exec "$1" sh -c 'systemctl is-system-running --wait >/dev/null 2>&1;
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq lynis >/dev/null 2>&1 ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq lynis >/dev/null; }
    lynis audit system --quick --no-colors >/dev/null 2>&1;
    sed -n "s/^hardening_index=//p" /var/log/lynis-report.dat'
}

docker rm -f "$bare" >/dev/null 2>&1 || true
trap 'docker rm -f "$bare" >/dev/null 2>&1 || true' EXIT
docker run -d --name "$bare" --cap-add SYS_ADMIN --cap-add NET_ADMIN --cap-add NET_RAW \
  --security-opt seccomp=unconfined --security-opt apparmor=unconfined --cgroupns=host \
  -v /sys/fs/cgroup:/sys/fs/cgroup:rw --tmpfs /run --tmpfs /run/lock "$image" >/dev/null
before=$(audit "$bare")

molecule converge -s base >/dev/null
after=$(audit "$hardened")

echo "Lynis hardening index on Debian $distro: bare $before, with the base role $after"
