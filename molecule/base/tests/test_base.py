"""The base role on a real server: sshd, deploy user, ufw, upgrades, fail2ban, sysctl, swap.

The SSH tests log in from the controller through the container's published port, the way
an operator would; the rest look at the running services inside the container.
"""
import os
import re
import subprocess
import time

import pytest

SSH_PORT = os.environ.get("FLASKSTACK_BASE_SSH_PORT", "2222")
KEY = os.path.join(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "."), "deploy_key")
SSH_OPTIONS = [
    "-p", SSH_PORT,
    "-o", "StrictHostKeyChecking=no",
    "-o", "UserKnownHostsFile=/dev/null",
    "-o", "BatchMode=yes",
    "-o", "ConnectTimeout=10",
    "-o", "IdentitiesOnly=yes",
    "-o", "LogLevel=ERROR",
]
SYSCTL_FILE = "/etc/sysctl.d/60-flaskstack-hardening.conf"


def ssh(user, *args, options=(), timeout=60):
    """Run ssh from the controller to the test container; returns the finished process."""
    command = ["ssh", *SSH_OPTIONS, *options, "%s@127.0.0.1" % user, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module", autouse=True)
def controller_not_banned(host):
    """Keep fail2ban and ufw's rate limit from blocking the SSH tests, except the ban test.

    The refused logins below are failures fail2ban counts, and ufw limits new SSH
    connections per source: start from empty lists and let fail2ban ignore the
    controller (seen as the container's gateway) until the ban test removes that.
    """
    gateway = host.check_output("ip -4 route show default").split()[2]
    host.run("fail2ban-client unban --all")
    host.run("echo / > /proc/net/xt_recent/DEFAULT")
    host.run_expect([0], "fail2ban-client set sshd addignoreip %s", gateway)
    yield gateway
    host.run("fail2ban-client set sshd delignoreip %s", gateway)
    host.run("fail2ban-client unban --all")


def pubkey():
    with open(KEY + ".pub", encoding="utf-8") as handle:
        return handle.read().strip()


# --- sshd ------------------------------------------------------------------------------


def test_sshd_runs_with_the_locked_down_effective_config(host):
    assert host.service("ssh").is_running
    assert host.service("ssh").is_enabled
    effective = dict(
        line.split(" ", 1) for line in host.check_output("sshd -T").splitlines() if " " in line
    )
    assert effective["permitrootlogin"] == "no"
    assert effective["passwordauthentication"] == "no"
    assert effective["kbdinteractiveauthentication"] == "no"
    assert effective["pubkeyauthentication"] == "yes"
    assert effective["x11forwarding"] == "no"
    assert effective["maxauthtries"] == "3"
    assert effective["port"] == "22"
    assert effective["clientaliveinterval"] == "300"
    assert effective["clientalivecountmax"] == "2"
    assert effective["tcpkeepalive"] == "no"
    assert effective["compression"] == "no"
    assert effective["loglevel"] == "VERBOSE"


def test_sshd_dropin_is_root_owned(host):
    dropin = host.file("/etc/ssh/sshd_config.d/00-flaskstack.conf")
    assert dropin.user == "root"
    assert dropin.mode == 0o644


def test_deploy_user_logs_in_with_its_key_and_uses_sudo():
    result = ssh("deploy", "sudo -n id -un && id -un", options=["-i", KEY])
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["root", "deploy"]


def test_root_is_refused_even_with_an_authorized_key():
    # converge.yml authorized the same key for root: only sshd's PermitRootLogin stops it.
    result = ssh("root", "true", options=["-i", KEY])
    assert result.returncode == 255
    assert "Permission denied" in result.stderr


def test_password_logins_are_not_offered():
    result = ssh(
        "deploy", "true",
        options=["-o", "PreferredAuthentications=password,keyboard-interactive",
                 "-o", "PubkeyAuthentication=no"],
    )
    assert result.returncode == 255
    assert "Permission denied (publickey)" in result.stderr


# --- deploy user -----------------------------------------------------------------------


def test_deploy_user_account(host):
    user = host.user("deploy")
    assert user.exists
    assert user.shell == "/bin/bash"
    assert "sudo" in user.groups


def test_deploy_user_may_sudo_without_password(host):
    rules = host.check_output("sudo -l -U deploy")
    assert "(ALL : ALL) NOPASSWD: ALL" in rules
    sudoers = host.file("/etc/sudoers.d/deploy")
    assert sudoers.user == "root" and sudoers.mode == 0o440
    host.run_expect([0], "visudo -c")


def test_authorized_keys_hold_exactly_the_configured_key(host):
    ssh_dir = host.file("/home/deploy/.ssh")
    assert ssh_dir.user == "deploy" and ssh_dir.mode == 0o700
    keys = host.file("/home/deploy/.ssh/authorized_keys")
    assert keys.user == "deploy"
    assert keys.mode == 0o600
    assert keys.content_string.strip().splitlines() == [pubkey()]


# --- firewall --------------------------------------------------------------------------


def test_ufw_denies_incoming_by_default_and_opens_exactly_the_listed_ports(host):
    status = host.check_output("ufw status verbose")
    assert "Status: active" in status
    assert "Default: deny (incoming), allow (outgoing)" in status
    rules = set()
    for line in status.splitlines():
        match = re.match(r"^(\S+(?: \(v6\))?)\s+(ALLOW IN|LIMIT IN|DENY IN)\s+(\S+(?: \(v6\))?)", line)
        if match:
            rules.add(match.groups())
    assert rules == {
        ("22/tcp", "LIMIT IN", "Anywhere"),
        ("80/tcp", "ALLOW IN", "Anywhere"),
        ("443/tcp", "ALLOW IN", "Anywhere"),
        ("5432/tcp", "ALLOW IN", "10.0.0.11"),
        ("60000:61000/udp", "ALLOW IN", "Anywhere"),
        ("22/tcp (v6)", "LIMIT IN", "Anywhere (v6)"),
        ("80/tcp (v6)", "ALLOW IN", "Anywhere (v6)"),
        ("443/tcp (v6)", "ALLOW IN", "Anywhere (v6)"),
        ("60000:61000/udp (v6)", "ALLOW IN", "Anywhere (v6)"),
    }


def test_ufw_leaves_kernel_settings_alone_in_containers(host):
    # base_firewall_manage_sysctl: false in converge.yml; ufw would fail on read-only /proc/sys.
    assert host.file("/etc/default/ufw").contains("^IPT_SYSCTL=$")
    assert host.service("ufw").is_enabled


@pytest.fixture
def listeners(host):
    """HTTP servers on an open (80) and a closed (8080) port of the container."""
    host.run_expect([0], "for p in 80 8080; do "
                         "setsid timeout 60 python3 -m http.server -d /tmp $p >/dev/null 2>&1 & done")
    for _ in range(50):
        if host.socket("tcp://0.0.0.0:80").is_listening and host.socket("tcp://0.0.0.0:8080").is_listening:
            break
        time.sleep(0.2)
    address = host.check_output("hostname -I").split()[0]
    yield address
    host.run("pkill -f 'http.server -d /tmp'")


def test_firewall_blocks_a_port_that_is_not_listed(listeners):
    def reachable(port):
        return subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "--max-time", "4", "http://%s:%d/" % (listeners, port)],
            check=False,
        ).returncode == 0

    assert reachable(80)
    assert not reachable(8080)


# --- logins, core dumps, kernel modules -------------------------------------------------


def test_login_defs_banner_and_pam_modules(host):
    login_defs = dict(
        line.split(None, 1) for line in host.file("/etc/login.defs").content_string.splitlines()
        if line.strip() and not line.startswith("#")
    )
    assert login_defs["UMASK"].strip() == "027"
    assert login_defs["PASS_MIN_DAYS"].strip() == "1"
    assert login_defs["SHA_CRYPT_MIN_ROUNDS"].strip() == "65536"
    assert login_defs["PASS_MAX_DAYS"].strip() == "99999"
    for banner in ("/etc/issue", "/etc/issue.net"):
        assert host.file(banner).contains("Authorized access only")
    assert host.file("/etc/pam.d/common-password").contains("pam_pwquality.so")
    assert host.file("/etc/pam.d/common-session").contains("pam_tmpdir.so")


def test_core_dumps_are_off(host):
    limits = host.file("/etc/security/limits.d/flaskstack-core-dumps.conf").content_string
    assert re.search(r"^\*\s+hard\s+core\s+0$", limits, re.M), limits
    assert host.file("/etc/systemd/coredump.conf.d/flaskstack.conf").contains("^Storage=none$")
    # A login shell of the deploy user gets a hard limit of 0 (pam_limits and profile.d).
    assert host.check_output("su - deploy -c 'ulimit -Hc'") == "0"


def test_listed_kernel_modules_are_kept_from_loading(host):
    modprobe = host.file("/etc/modprobe.d/flaskstack-disabled-modules.conf").content_string
    for module in ("usb-storage", "firewire-core", "dccp", "sctp", "rds", "tipc"):
        assert "install %s /bin/true\nblacklist %s\n" % (module, module) in modprobe


# --- automatic upgrades ----------------------------------------------------------------


def test_unattended_security_upgrades_are_on(host):
    config = host.check_output("apt-config dump")
    assert 'APT::Periodic::Update-Package-Lists "1";' in config
    assert 'APT::Periodic::Unattended-Upgrade "1";' in config
    origins = re.findall(r'^Unattended-Upgrade::Origins-Pattern:: "(.*)";$', config, re.M)
    assert origins == [
        "origin=Debian,codename=${distro_codename},label=Debian-Security",
        "origin=Debian,codename=${distro_codename}-security,label=Debian-Security",
    ]
    assert host.package("unattended-upgrades").is_installed
    assert host.service("apt-daily-upgrade.timer").is_enabled


# --- kernel settings, time, swap -------------------------------------------------------


def test_sysctl_file_holds_the_hardening_and_leaves_ip_forward_alone(host):
    sysctl = host.file(SYSCTL_FILE)
    assert sysctl.user == "root"
    settings = dict(
        line.replace(" ", "").split("=", 1)
        for line in sysctl.content_string.splitlines()
        if line.strip() and not line.startswith("#")
    )
    assert settings["net.ipv4.conf.all.rp_filter"] == "1"
    assert settings["net.ipv4.conf.all.accept_redirects"] == "0"
    assert settings["net.ipv4.conf.all.send_redirects"] == "0"
    assert settings["net.ipv4.conf.all.accept_source_route"] == "0"
    assert settings["net.ipv6.conf.all.accept_redirects"] == "0"
    assert settings["net.ipv4.tcp_syncookies"] == "1"
    assert settings["kernel.kptr_restrict"] == "2"
    assert settings["kernel.dmesg_restrict"] == "1"
    assert "net.ipv4.ip_forward" not in settings
    # Every key exists in this kernel, so systemd-sysctl will apply the file at boot.
    for key in settings:
        assert host.file("/proc/sys/" + key.replace(".", "/")).exists, key


def test_time_zone_and_time_sync(host):
    assert host.check_output("timedatectl show -p Timezone --value") == "Etc/UTC"
    assert host.file("/etc/localtime").linked_to == "/usr/share/zoneinfo/Etc/UTC"
    assert host.service("systemd-timesyncd").is_enabled


def test_swap_file_is_formatted_private_and_in_fstab(host):
    swap = host.file("/swapfile")
    assert swap.user == "root" and swap.mode == 0o600
    assert swap.size == 64 * 1024 * 1024
    assert host.check_output("blkid -o value -s TYPE /swapfile") == "swap"
    fstab = host.file("/etc/fstab").content_string
    assert re.search(r"^/swapfile\s+none\s+swap\s+sw\s", fstab, re.M), fstab


# --- Lynis ------------------------------------------------------------------------------

LYNIS = (
    # Until systemd has booted (systemd-tmpfiles empties /tmp under apt's feet before).
    "for i in $(seq 120); do "
    "case $(systemctl is-system-running 2>/dev/null) in running|degraded) break ;; esac; sleep 1; done; "
    "{ DEBIAN_FRONTEND=noninteractive apt-get install -y -qq lynis >/dev/null 2>&1 || "
    "{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq lynis >/dev/null; }; } && "
    "lynis audit system --quick --no-colors >/dev/null 2>&1; "
    "sed -n 's/^hardening_index=//p' /var/log/lynis-report.dat"
)


def lynis_index(container):
    run = subprocess.run(["docker", "exec", container, "sh", "-c", LYNIS],
                         capture_output=True, text=True, timeout=900, check=False)
    assert run.stdout.strip().isdigit(), (run.stdout, run.stderr)
    return int(run.stdout.strip())


def test_lynis_hardening_index_rises_over_a_bare_server(host):
    """Lynis on the hardened container and on a bare one from the same image (same flags)."""
    hardened = host.backend.get_hostname()
    image = subprocess.run(["docker", "inspect", "-f", "{{.Config.Image}}", hardened],
                           capture_output=True, text=True, check=True).stdout.strip()
    bare = hardened + "-lynis-bare"
    subprocess.run(["docker", "rm", "-f", bare], capture_output=True, check=False)
    subprocess.run(
        ["docker", "run", "-d", "--name", bare, "--cap-add", "SYS_ADMIN", "--cgroupns=host",
         "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
         "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw", "--tmpfs", "/run", "--tmpfs", "/run/lock",
         image, "/lib/systemd/systemd"], capture_output=True, text=True, check=True)
    try:
        before = lynis_index(bare)
    finally:
        subprocess.run(["docker", "rm", "-f", bare], capture_output=True, check=False)
    after = lynis_index(hardened)
    print("\nFIGURE Lynis hardening index: bare %d, with the base role %d" % (before, after))
    # Measured 59 -> 78 on Debian 12 (roles/base/README.md lists what Lynis still suggests
    # and why): the role must raise the index and reach 75.
    assert after >= before + 5, (before, after)
    assert after >= 75, (before, after)


# --- fail2ban (last: it bans the controller for a moment) ------------------------------


def test_fail2ban_bans_a_source_failing_ssh_logins(host, controller_not_banned):
    status = host.check_output("fail2ban-client status sshd")
    assert "Currently banned:\t0" in status
    host.run_expect([0], "fail2ban-client set sshd delignoreip %s", controller_not_banned)
    try:
        # maxretry is 2 in converge.yml: unknown users from the controller count as failures.
        for attempt in range(2):
            ssh("intruder%d" % attempt, "true", options=["-i", KEY])
        for _ in range(40):
            status = host.check_output("fail2ban-client status sshd")
            if "Currently banned:\t1" in status:
                break
            time.sleep(0.5)
        assert "Currently banned:\t1" in status, status
        assert controller_not_banned in status
        # The ban is real: even the deploy user's key no longer gets through. Docker's port
        # proxy accepts the TCP connection itself, so a dropped source may hang instead of
        # failing: both count as refused, a login that succeeds does not.
        try:
            refused = ssh("deploy", "true", options=["-i", KEY], timeout=20).returncode == 255
        except subprocess.TimeoutExpired:
            refused = True
        assert refused
    finally:
        host.run("fail2ban-client unban --all")
