import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.flaskstack.deploy.plugins.filter.git_commit import git_commit

A = "a" * 40
B = "b" * 40
C = "c" * 40
LS_REMOTE = "\n".join(
    [
        "%s\trefs/heads/main" % A,
        "%s\trefs/tags/v1.0" % B,
        "%s\trefs/tags/v1.0^{}" % C,
        "%s\trefs/tags/light" % A,
    ]
)


def test_branch():
    assert git_commit(LS_REMOTE, "main") == A


def test_annotated_tag_resolves_to_its_commit():
    assert git_commit(LS_REMOTE, "v1.0") == C


def test_lightweight_tag():
    assert git_commit(LS_REMOTE, "light") == A


def test_tag_wins_over_branch_of_same_name():
    out = "%s\trefs/heads/v2\n%s\trefs/tags/v2\n" % (A, B)
    assert git_commit(out, "v2") == B


def test_full_commit_id_not_advertised():
    sha = "0123456789abcdef0123456789abcdef01234567"
    assert git_commit("", sha) == sha
    assert git_commit("", sha.upper()) == sha


def test_unknown_version_is_named():
    with pytest.raises(AnsibleFilterError, match="'v9'"):
        git_commit(LS_REMOTE, "v9")


def test_short_commit_id_is_refused():
    with pytest.raises(AnsibleFilterError, match="full 40-character"):
        git_commit(LS_REMOTE, "abc1234")
