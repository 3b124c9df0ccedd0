"""What the scenarios' testinfra tests share: the container's address, a playbook run against
the scenario's own inventory, a page over HTTPS through nginx, and what the sample repository
(tests/sample-repo.sh) deploys."""
import os
import subprocess

PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.getcwd())
DISTRO = os.environ.get("FLASKSTACK_DISTRO", "bookworm")

# The sample app: where it lives, its migrations' heads at v1.0 and v2.0, and v2.0's footer.
ROOT = "/srv/flaskapp"
V1_REVISION = "0fa6799e3123"
V2_REVISION = "5b1e2c3d4f60"
FOOTER = '<footer class="version">Guestbook 2.0</footer>'


def container_ip(container):
    return subprocess.run(
        ["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", container],
        check=True, capture_output=True, text=True).stdout.strip()


def playbook(name, *extra):
    """ansible-playbook playbooks/NAME against the scenario's inventory; .output holds stdout
    and stderr together."""
    ephemeral = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
    env = dict(os.environ)
    env["ANSIBLE_COLLECTIONS_PATH"] = os.path.join(PROJECT, ".cache", "collections")
    cfg = os.path.join(ephemeral, "ansible.cfg")
    if os.path.exists(cfg):
        env["ANSIBLE_CONFIG"] = cfg
    cmd = ["ansible-playbook", "-i", os.path.join(ephemeral, "inventory"),
           os.path.join(PROJECT, "playbooks", name)] + list(extra)
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    run.output = run.stdout + run.stderr
    return run


def https(host, name, path="/", options=""):
    """The page at PATH of site NAME over HTTPS through nginx on HOST; OPTIONS is shell text,
    as written."""
    return host.check_output(
        "curl -sS --resolve {0}:443:127.0.0.1 --cacert /etc/nginx/tls/{0}.crt {1} https://{0}{2}".format(
            name, options, path))


def service(host, unit, prop):
    return host.check_output("systemctl show -P %s %s", prop, unit)


def revision(host):
    """The head of the sample app's migrations in its PostgreSQL database."""
    return host.check_output("runuser -u postgres -- psql -d flaskapp -Atc 'SELECT version_num FROM alembic_version'")


def sign(host, name, message):
    """Posts MESSAGE to the sample app's guestbook at NAME; returns the HTTP status of the post,
    whether the page then shows it and how many entries of the database hold it."""
    status = https(host, name, "/", "-o /dev/null -w '%%{http_code}' --data-urlencode message=%s" % message)
    shown = message in https(host, name)
    count = host.check_output(
        "runuser -u postgres -- psql -d flaskapp -Atc \"SELECT count(*) FROM entries WHERE message = '%s'\"" % message)
    return status, shown, int(count)


def newer_than_the_build(host):
    """Files of the live virtualenv newer than the stamp written right after pip built it (at
    most five): none after a re-run that left it untouched. The directory itself is left out:
    moving the stamp into it changed its mtime."""
    venv = ROOT + "/current/venv"
    assert host.file(venv + "/.flaskstack-build").exists
    return host.check_output("find %s/ -mindepth 1 -newer %s/.flaskstack-build | head -5", venv, venv)
