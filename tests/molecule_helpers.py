"""What the scenarios' testinfra tests share: the container's address, a playbook run against
the scenario's own inventory, and a page over HTTPS through nginx."""
import os
import subprocess

PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.getcwd())
DISTRO = os.environ.get("FLASKSTACK_DISTRO", "bookworm")


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
    run = subprocess.run(cmd, capture_output=True, text=True, env=env)
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
