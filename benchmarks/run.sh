#!/usr/bin/env bash
# Benchmarks of flaskstack.deploy against the classic manual recipe; prints figures, asserts
# nothing (see docs/benchmarks.md). One command, from a clone of the repository:
#   benchmarks/run.sh           set up the test bed, create three fresh server containers
#                               (flaskstack-bench-ansible, flaskstack-bench-mitogen,
#                               flaskstack-bench-manual), measure, print a summary table,
#                               remove the containers
#   benchmarks/run.sh --keep    the same, but leave the containers running
# Ansible reaches the servers over SSH (pipelining, ControlPersist), as the cloud image's
# "debian" user first and as the deploy user after hardening; the Mitogen rows run the same
# playbooks with Mitogen's strategy on the third container. Nothing measured runs at the same
# time as anything else measured.
# FLASKSTACK_DISTRO=trixie runs on Debian 13. Logs: .cache/bench/*.log. About 30 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

keep=false
[ "${1:-}" = "--keep" ] && keep=true
distro=${FLASKSTACK_DISTRO:-bookworm}
export FLASKSTACK_DISTRO=$distro FLASKSTACK_DISTROS=$distro
# shellcheck source=scripts/testbed.sh
. scripts/testbed.sh
testbed_setup
# One SSH session per task over the kept connection (inventory: ansible_ssh_pipelining too).
export ANSIBLE_PIPELINING=true
# Mitogen's strategy, for the rows that use it (Mitogen is in the test bed's virtualenv).
mitogen=(env ANSIBLE_STRATEGY=mitogen_linear
  "ANSIBLE_STRATEGY_PLUGINS=$(python -c 'import ansible_mitogen, os; print(os.path.dirname(ansible_mitogen.__file__) + "/plugins/strategy")')")

ANSIBLE_HOST=flaskstack-bench-ansible
MITOGEN_HOST=flaskstack-bench-mitogen
MANUAL_HOST=flaskstack-bench-manual
NAME=bench.test
out=.cache/bench
mkdir -p "$out"
rm -f "$out"/*.log "$out/figures.txt" "$out/loadavg.txt" "$out"/address-*.yml
# Over SSH, to the container addresses benchmarks/containers.yml writes; one server each.
on_ansible=(-i benchmarks/inventory/hosts.yml -i "$out/address-$ANSIBLE_HOST.yml")
on_mitogen=(-i benchmarks/inventory/mitogen.yml -i "$out/address-$MITOGEN_HOST.yml")
# The first run logs in as the cloud image's user (scripts/cloud-login.yml); it creates the
# deploy user, which the later runs log in as (the inventory's ansible_user).
first_login=(-e ansible_user=debian)

say() { printf '[bench] %s\n' "$*" >&2; }
now() { date +%s.%N; }
seconds() { python3 -c "import sys; print('%.1f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$1" "$2"; }
ratio() { python3 -c "import sys; print('%.2f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$1" "$2"; }
figure() { printf '%s=%s\n' "$1" "$2" >>"$out/figures.txt"; printf -v "$1" '%s' "$2"; }

# run LOG COMMAND...: the command's output goes to .cache/bench/LOG.log; stop on failure.
run() {
  local name=$1; shift
  if ! "$@" >"$out/$name.log" 2>&1; then
    tail -n 40 "$out/$name.log" >&2
    say "failed: $* (log: $out/$name.log)"
    exit 1
  fi
}

# timed VAR LOG COMMAND...: run, and keep the wall-clock seconds in VAR.
timed() {
  local var=$1 name=$2; shift 2
  local t0
  t0=$(now)
  run "$name" "$@"
  figure "$var" "$(seconds "$t0" "$(now)")"
  say "$name: ${!var} s"
}

# loaded PREFIX ADDRESS LABEL COMMAND...: run under steady HTTPS load (log: load-PREFIX.log);
# PREFIX_failed, _requests, _p50, _p99, _seconds.
loaded() {
  local prefix=$1 address=$2 label=$3 name=load-$1; shift 3
  run "$name" python3 benchmarks/load.py "$address" "$NAME" "$label" -- "$@"
  local failed requests p50 p99 took
  read -r _ failed requests p50 p99 took < <(grep '^LOAD ' "$out/$name.log")
  figure "${prefix}_failed" "$failed"; figure "${prefix}_requests" "$requests"
  figure "${prefix}_p50" "$p50"; figure "${prefix}_p99" "$p99"; figure "${prefix}_seconds" "$took"
  say "$(grep -v '^LOAD ' "$out/$name.log" | tail -n 1)"
}

address() { docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$1"; }
# changed LOG [HOST]: the changed= count of HOST (default: the flaskstack server) in the log's recap.
changed() { awk -v h="${2:-$ANSIBLE_HOST}" '$1 == h { for (i = 1; i <= NF; i++) if ($i ~ /^changed=/) { sub("changed=", "", $i); print $i } }' "$out/$1.log" | tail -n 1; }

remove_containers() {
  # Close the SSH connections kept open to the servers (ControlPersist).
  local socket
  for socket in "$out"/ssh-*; do
    [ -S "$socket" ] && ssh -O exit -S "$socket" bench >/dev/null 2>&1 || true
  done
  ansible-playbook benchmarks/containers.yml -e bench_state=absent >"$out/remove.log" 2>&1 || true
}

sampler=
finish() {
  [ -n "$sampler" ] && kill "$sampler" 2>/dev/null
  if $keep; then
    say "containers kept: $ANSIBLE_HOST $MITOGEN_HOST $MANUAL_HOST (remove: docker rm -f $ANSIBLE_HOST $MITOGEN_HOST $MANUAL_HOST)"
  else
    remove_containers
  fi
}
trap finish EXIT

# The machine's load average, every 15 s during the run.
(while :; do cut -d' ' -f1 /proc/loadavg; sleep 15; done) >"$out/loadavg.txt" &
sampler=$!
started=$(now)

# The download caches both servers share (the same for both, so downloads do not skew the
# comparison). A first run seeds apt's from the test bed's other caches.
cache="$FLASKSTACK_TESTBED_CACHE/apt-$distro-bench"
mkdir -p "$cache/partial"
if [ "$(find "$cache" -maxdepth 1 -name '*.deb' | wc -l)" -lt 100 ]; then
  find "$FLASKSTACK_TESTBED_CACHE" -maxdepth 2 -path "*/apt-$distro-*/*.deb" -exec cp -n -t "$cache" {} + 2>/dev/null || true
fi
apt_debs_before=$(find "$cache" -maxdepth 1 -name '*.deb' | wc -l)

say "creating $ANSIBLE_HOST, $MITOGEN_HOST and $MANUAL_HOST"
remove_containers
run containers ansible-playbook benchmarks/containers.yml
say "preparing all three over docker exec (CA trust, pip.conf, the sample app's repository"
say "  at /srv/git/guestbook.git; openssh-server and the cloud image's login with the benchmark's key)"
# One host at a time: they share apt's download cache and its lock.
run prepare ansible-playbook --forks 1 -i benchmarks/inventory-docker.yml \
  molecule/resources/prepare.yml -e "testbed_work_dir=$PWD/$out"
run cloud-login ansible-playbook --forks 1 -i benchmarks/inventory-docker.yml \
  scripts/cloud-login.yml -e "cloud_login_key=$PWD/$out/deploy_key.pub"
ansible_ip=$(address "$ANSIBLE_HOST")
manual_ip=$(address "$MANUAL_HOST")

# 1. Fresh deployment: site.yml without and with Mitogen, then the manual recipe, one after the other.
say "fresh converge of site.yml (v1.0)"
timed fresh_site site-fresh ansible-playbook "${on_ansible[@]}" "${first_login[@]}" playbooks/site.yml
say "fresh converge of site.yml (v1.0) with Mitogen"
timed fresh_mitogen mitogen-fresh "${mitogen[@]}" ansible-playbook "${on_mitogen[@]}" "${first_login[@]}" playbooks/site.yml
say "manual recipe on the third container (v1.0)"
docker cp benchmarks/manual-recipe.sh "$MANUAL_HOST:/usr/local/sbin/manual-recipe.sh" >/dev/null
timed fresh_manual manual-install docker exec "$MANUAL_HOST" /usr/local/sbin/manual-recipe.sh install "$NAME" v1.0

# 2. Re-run (as the deploy user from now on), without and with Mitogen.
say "idempotent re-run of site.yml"
timed rerun_site site-rerun ansible-playbook "${on_ansible[@]}" playbooks/site.yml
figure rerun_changed "$(changed site-rerun)"
say "idempotent re-run of site.yml with Mitogen"
timed rerun_mitogen mitogen-rerun "${mitogen[@]}" ansible-playbook "${on_mitogen[@]}" playbooks/site.yml
figure rerun_mitogen_changed "$(changed mitogen-rerun "$MITOGEN_HOST")"

# 3. Updates under load (v1.0 -> v2.0: a migration), then the code-only update.
say "update.yml v1.0 -> v2.0 under load"
loaded update "$ansible_ip" "update.yml v1.0 -> v2.0" \
  ansible-playbook "${on_ansible[@]}" playbooks/update.yml -e app_version=v2.0
say "code-only update.yml v2.0 -> v2.1"
timed update_code site-update-v2.1 ansible-playbook "${on_ansible[@]}" playbooks/update.yml -e app_version=v2.1
say "update.yml v1.0 -> v2.0 with Mitogen (not measured: the code-only update's starting point)"
run mitogen-update-v2.0 "${mitogen[@]}" ansible-playbook "${on_mitogen[@]}" playbooks/update.yml -e app_version=v2.0
say "code-only update.yml v2.0 -> v2.1 with Mitogen"
timed update_code_mitogen mitogen-update-v2.1 "${mitogen[@]}" ansible-playbook "${on_mitogen[@]}" playbooks/update.yml -e app_version=v2.1
say "classic stop-migrate-start on the flaskstack.deploy server under load"
loaded stopstart "$ansible_ip" "stop, flask db upgrade, start (flaskstack server)" \
  docker exec "$ANSIBLE_HOST" sh -c "systemctl stop flaskapp.service flaskapp.socket && cd /srv/flaskapp/current && \
runuser -u flaskapp -- sh -c 'set -a && . /srv/flaskapp/shared/.env && set +a && exec venv/bin/flask db upgrade' && \
systemctl start flaskapp.socket flaskapp.service"
say "manual recipe's update v1.0 -> v2.0 under load"
loaded manual "$manual_ip" "manual recipe update v1.0 -> v2.0" \
  docker exec "$MANUAL_HOST" /usr/local/sbin/manual-recipe.sh update v2.0

# 4. Throughput inside the flaskstack.deploy server, on loopback (wrk from Debian).
say "throughput with wrk"
run wrk-install docker exec "$ANSIBLE_HOST" sh -c "apt-get install -y -q -o DPkg::Lock::Timeout=300 wrk && { grep -q ' $NAME\$' /etc/hosts || echo '127.0.0.1 $NAME' >>/etc/hosts; }"
rps() {
  local var=$1 url=$2
  run "wrk-$var" docker exec "$ANSIBLE_HOST" wrk --threads 2 --connections 8 --duration 10s -H "Host: $NAME" "$url"
  figure "$var" "$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out/wrk-$var.log")"
  figure "${var}_errors" "$(awk '/Non-2xx|Socket errors/ { print }' "$out/wrk-$var.log" | tr -s ' ' | paste -sd';' -)"
  say "$url: ${!var} requests/s"
}
rps dynamic_nginx "https://$NAME/"
rps dynamic_gunicorn "http://127.0.0.1:8000/"
rps static_nginx "https://$NAME/static/style.css"
rps static_flask "http://127.0.0.1:8000/static/style.css"

kill "$sampler" 2>/dev/null; sampler=
total=$(seconds "$started" "$(now)")
load_summary=$(python3 -c "
import sys
v = [float(x) for x in open(sys.argv[1]).read().split()]
print('start %.1f, mean %.1f, max %.1f' % (v[0], sum(v) / len(v), max(v)))" "$out/loadavg.txt")

cat <<SUMMARY

flaskstack.deploy benchmarks ($(date -u '+%Y-%m-%d %H:%M UTC'), total ${total} s)
Machine: $(nproc) cores, $(free -g | awk '/^Mem:/ { print $2 }') GiB RAM, host $(. /etc/os-release && echo "$PRETTY_NAME") ($(cat /etc/debian_version 2>/dev/null || echo '?')),
  servers: Debian $distro containers; load average during the run: $load_summary;
  $(docker ps -q | wc -l) containers running at the end. Shared, busy machine: indicative figures.
Caches: both servers use the same apt download cache ($apt_debs_before .debs before the run) and
  pip cache (/var/cache/flaskstack-pip from $FLASKSTACK_TESTBED_CACHE/pip); apt-get update runs in both.

| Figure                                               | Value                      | Ratio |
|------------------------------------------------------|----------------------------|-------|
| 1. fresh converge, site.yml (all roles)              | $(printf '%-26s' "$fresh_site s") |       |
| 1. fresh install, manual-recipe.sh                   | $(printf '%-26s' "$fresh_manual s") | $(printf '%-5s' "$(ratio "$fresh_site" "$fresh_manual")") site.yml / manual |
| 2. idempotent re-run, site.yml                       | $(printf '%-26s' "$rerun_site s, changed=$rerun_changed") | $(printf '%-5s' "$(ratio "$rerun_site" "$fresh_site")") re-run / fresh |
| 2. code-only update.yml v2.0 -> v2.1                 | $(printf '%-26s' "$update_code s") | $(printf '%-5s' "$(ratio "$update_code" "$fresh_site")") update / fresh |
| 1. fresh converge, site.yml, Mitogen                 | $(printf '%-26s' "$fresh_mitogen s") | $(printf '%-5s' "$(ratio "$fresh_mitogen" "$fresh_manual")") site.yml / manual |
| 2. idempotent re-run, site.yml, Mitogen              | $(printf '%-26s' "$rerun_mitogen s, changed=$rerun_mitogen_changed") | $(printf '%-5s' "$(ratio "$rerun_mitogen" "$fresh_mitogen")") re-run / fresh |
| 2. code-only update.yml v2.0 -> v2.1, Mitogen        | $(printf '%-26s' "$update_code_mitogen s") | $(printf '%-5s' "$(ratio "$update_code_mitogen" "$fresh_mitogen")") update / fresh |
| 3. update.yml v1.0 -> v2.0 (migration), under load   | $(printf '%-26s' "$update_failed/$update_requests failed, p99 $update_p99 ms") | ${update_seconds} s |
| 3. manual recipe update v1.0 -> v2.0, under load     | $(printf '%-26s' "$manual_failed/$manual_requests failed, p99 $manual_p99 ms") | ${manual_seconds} s |
| 3. stop, db upgrade, start (flaskstack server)       | $(printf '%-26s' "$stopstart_failed/$stopstart_requests failed, p99 $stopstart_p99 ms") | ${stopstart_seconds} s |
| 4. dynamic page, nginx -> gunicorn (HTTPS)           | $(printf '%-26s' "$dynamic_nginx req/s") | $(printf '%-5s' "$(ratio "$dynamic_nginx" "$dynamic_gunicorn")") nginx / gunicorn |
| 4. dynamic page, gunicorn directly (HTTP)            | $(printf '%-26s' "$dynamic_gunicorn req/s") |       |
| 4. static file, nginx (HTTPS)                        | $(printf '%-26s' "$static_nginx req/s") | $(printf '%-5s' "$(ratio "$static_nginx" "$static_flask")") nginx / Flask |
| 4. static file, Flask via gunicorn (HTTP)            | $(printf '%-26s' "$static_flask req/s") |       |

Ansible: over SSH to the container addresses (pipelining, ControlPersist=120s; the first
  run as the cloud image's user, then as the deploy user); Mitogen rows: strategy
  mitogen_linear on a third, identical container; ratios within each strategy.
Load: tests/loadgen.py from this machine to the server's container address, HTTPS, about
20 requests/s on 4 threads, a new connection per request. Throughput: wrk (2 threads, 8
connections, 10 s) inside the server on loopback, sharing its cores with the server.
SUMMARY
for var in dynamic_nginx dynamic_gunicorn static_nginx static_flask; do
  errors=${var}_errors
  [ -n "${!errors}" ] && echo "wrk $var: ${!errors}"
done
exit 0
