"""update.yml and rollback.yml under steady HTTPS load, from the outside in.

The tests run in file order: v1.0 is live after converge; the classic stop-migrate-start
recipe first shows the load detects failed requests; then v2.0 goes live (on v1.0's
virtualenv), three broken releases are refused, so is an update_serial set in the inventory,
the deploy lock holds, rollback.yml brings v1.0's code back, site.yml keeps it and reverts a
release that fails once live, and the maintenance switch serves its page during an update.
"""
import json
import os
import sys
import time

import pytest

NAME = "guestbook.test"
ROOT = "/srv/flaskapp"
V1_REVISION = "0fa6799e3123"
V2_REVISION = "5b1e2c3d4f60"
FOOTER = '<footer class="version">Guestbook 2.0</footer>'
PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.getcwd())
EPHEMERAL = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
sys.path.insert(0, os.path.join(PROJECT, "tests"))
from loadgen import Load  # noqa: E402
from molecule_helpers import DISTRO, container_ip, https, playbook  # noqa: E402

CONTAINER = "flaskstack-update-%s" % DISTRO


def steady_load():
    return Load(container_ip(CONTAINER), NAME, marker=FOOTER, max_seconds=3600)


def figure(line):
    print("\nFIGURE " + line)
    with open(os.path.join(EPHEMERAL, "figures.txt"), "a") as figures:
        figures.write(line + "\n")
    return line


def revision(host):
    return host.check_output("runuser -u postgres -- psql -d flaskapp -Atc 'SELECT version_num FROM alembic_version'")


def live_release(host):
    return os.path.basename(host.file(ROOT + "/current").linked_to)


def history(host):
    lines = host.file(ROOT + "/releases.log").content_string.splitlines()
    return [json.loads(line) for line in lines if line]


def page(host):
    return https(host, NAME)


def test_v1_is_live(host):
    assert FOOTER not in page(host)
    assert revision(host) == V1_REVISION
    assert [entry["result"] for entry in history(host)] == ["live"]


def test_the_classic_recipe_fails_requests(host):
    """stop, migrate, start: what update.yml replaces. Also shows the load sees failures."""
    release = ROOT + "/current"
    with steady_load() as load:
        time.sleep(3)
        host.check_output(
            "systemctl stop flaskapp.service flaskapp.socket && cd %s && runuser -u flaskapp -- "
            "sh -c 'set -a && . %s/shared/.env && set +a && exec venv/bin/flask db upgrade' && "
            "systemctl start flaskapp.socket flaskapp.service", release, ROOT)
        time.sleep(3)
    line = figure(load.report("classic stop-migrate-start"))
    assert load.failed > 0, line
    assert host.service("flaskapp.service").is_running


def test_update_to_v2_under_load_loses_no_request(host):
    with steady_load() as load:
        run = playbook("update.yml", "-e", "app_version=v2.0")
    line = figure(load.report("update.yml v1.0 -> v2.0"))
    assert run.returncode == 0, run.output[-3000:]
    assert load.failed == 0, line
    assert load.total >= 200, line
    # Both releases answered during the run, and the last answers came from v2.0.
    assert load.pages[0] is False and load.pages[-1] is True
    assert FOOTER in page(host)
    assert revision(host) == V2_REVISION
    last = history(host)[-1]
    assert last["result"] == "live" and last["version"] == "v2.0"
    assert last["release"] == live_release(host)
    assert host.file(last["backup"]).exists and host.file(last["backup"]).size > 0
    assert host.file(last["backup"]).mode == 0o600 or host.file(last["backup"]).user == "flaskapp"
    assert not host.file(ROOT + "/.deploy-lock").exists


def test_a_release_without_new_packages_shares_the_live_virtualenv(host):
    """v2.0 brings code and a migration, no package: its release links to v1.0's virtualenv,
    which the update did not build again (app_venv_shared)."""
    releases = host.check_output("ls %s/releases", ROOT).split()
    links = [host.file("%s/releases/%s/venv" % (ROOT, release)) for release in releases]
    assert len(releases) == 2 and all(link.is_symlink for link in links)
    targets = {link.linked_to for link in links}
    assert len(targets) == 1, targets
    (venv,) = targets
    assert host.check_output("ls %s/venvs", ROOT).split() == [os.path.basename(venv)]
    assert venv == ROOT + "/venvs/" + os.path.basename(venv)
    assert host.file(venv + "/.flaskstack-build").user == "flaskapp"


def test_writable_directories_survive_releases(host):
    link = host.file(ROOT + "/current/instance")
    assert link.is_symlink and link.linked_to == ROOT + "/shared/instance"
    assert host.file(ROOT + "/shared/instance").user == "flaskapp"


@pytest.mark.parametrize("version, step, detail", [
    ("broken-import", "Stop when the WSGI entry point does not import", "guestbook.reports"),
    ("broken-migration", "Stop when the deploy command failed", "no_such_column"),
    ("broken-probe", "Stop when the release fails its health probe", "answered 503"),
])
def test_a_broken_release_fails_clearly_and_v2_keeps_serving(host, version, step, detail):
    before = live_release(host)
    releases_before = host.check_output("ls %s/releases", ROOT).split()
    with steady_load() as load:
        run = playbook("update.yml", "-e", "app_version=" + version)
    line = figure(load.report("update.yml to " + version))
    assert run.returncode != 0
    assert 'failed at "%s"' % step in run.output, run.output[-3000:]
    assert detail in run.output, run.output[-3000:]
    assert load.failed == 0, line
    assert load.pages and all(load.pages), "a request was answered by the broken release"
    assert live_release(host) == before
    assert FOOTER in page(host)
    assert revision(host) == V2_REVISION
    assert host.check_output("ls %s/releases", ROOT).split() == releases_before
    assert history(host)[-1]["result"] == "failed at: " + step
    assert not host.file(ROOT + "/.deploy-lock").exists


def test_update_serial_from_the_inventory_is_refused(host, tmp_path):
    """A play's serial cannot read inventory variables: update.yml refuses an update_serial
    set there (and not given with -e) in its first play, before anything changes."""
    before = live_release(host)
    history_before = history(host)
    extra_inventory = tmp_path / "update-serial.yml"
    extra_inventory.write_text("webservers:\n  vars:\n    update_serial: 50%\n")
    run = playbook("update.yml", "-i", str(extra_inventory), "-e", "app_version=v1.0")
    assert run.returncode != 0
    assert "update_serial is 50% in the inventory" in run.output, run.output[-3000:]
    assert "-e update_serial=50%" in run.output, run.output[-3000:]
    assert "changed=0 " in run.output, run.output[-3000:]
    assert live_release(host) == before
    assert history(host) == history_before
    assert not host.file(ROOT + "/.deploy-lock").exists


def test_the_deploy_lock_refuses_a_second_run(host):
    host.check_output("mkdir %s/.deploy-lock && echo 'update.yml run by someone since 2026-01-01' > %s/.deploy-lock/holder",
                      ROOT, ROOT)
    try:
        run = playbook("update.yml", "-e", "app_version=v1.0")
        assert run.returncode != 0
        assert "Another deploy holds the lock" in run.output
        assert "run by someone since 2026-01-01" in run.output
        assert "changed=0 " in run.output
        assert FOOTER in page(host)
    finally:
        host.check_output("rm -rf %s/.deploy-lock", ROOT)


def test_rollback_brings_back_v1_code_under_load(host):
    v2 = live_release(host)
    with steady_load() as load:
        run = playbook("rollback.yml")
    line = figure(load.report("rollback.yml v2.0 -> v1.0"))
    assert run.returncode == 0, run.output[-3000:]
    assert load.failed == 0, line
    assert FOOTER not in page(host)
    assert "Schema changes are not undone" in run.output
    assert "-before-%s.dump" % v2 in run.output
    # The schema stays as v2.0 left it, and v1.0's code works with it.
    assert revision(host) == V2_REVISION
    code = host.check_output(
        "curl -sS -o /dev/null -w '%%{http_code}' --resolve %s:443:127.0.0.1 --cacert /etc/nginx/tls/%s.crt "
        "--data-urlencode message=after-rollback https://%s/", NAME, NAME, NAME)
    assert code == "302"
    assert "after-rollback" in page(host)


def test_site_yml_keeps_the_rolled_back_release(host):
    """A re-run of site.yml whose app_version still names the release rollback.yml replaced."""
    v1 = live_release(host)
    run = playbook("site.yml", "--tags", "app", "-e", "app_version=v2.0")
    assert run.returncode == 0, run.output[-3000:]
    assert "stays live: rollback.yml put it back" in run.output, run.output[-3000:]
    assert "changed=0 " in run.output, run.output[-3000:]
    assert live_release(host) == v1
    assert FOOTER not in page(host)
    assert not host.file(ROOT + "/.deploy-lock").exists


def test_site_yml_puts_the_previous_release_back_when_the_live_probe_fails(host):
    """site.yml takes the same release path as update.yml: the live probe after the restart
    guards it. With the probe before the switch turned off, only the live probe stands
    between a release that answers 503 and the site."""
    before = live_release(host)
    releases_before = host.check_output("ls %s/releases", ROOT).split()
    run = playbook("site.yml", "--tags", "app", "-e", "app_version=broken-probe",
                   "-e", "app_probe_enabled=false", "-e", "app_health_check_timeout=3")
    assert run.returncode != 0
    assert 'failed at "Ask the live app for ' in run.output, run.output[-3000:]
    assert "The previous release was put back and restarted." in run.output, run.output[-3000:]
    assert live_release(host) == before
    assert FOOTER not in page(host)
    assert host.check_output("ls %s/releases", ROOT).split() == releases_before
    assert history(host)[-1]["result"].startswith("failed at: Ask the live app for ")
    assert not host.file(ROOT + "/.deploy-lock").exists


def test_maintenance_mode_serves_its_page_during_the_update_and_ends(host):
    with steady_load() as load:
        run = playbook("update.yml", "-e", "app_version=v2.0", "-e", "update_maintenance=true")
    line = figure(load.report("update.yml with update_maintenance=true"))
    assert run.returncode == 0, run.output[-3000:]
    assert load.statuses.get("503", 0) > 0, line
    assert load.failed == load.statuses.get("503", 0), line
    assert not host.file(ROOT + "/shared/maintenance").exists
    assert FOOTER in page(host)
