# Copyright: flaskstack maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Find the commit a branch, tag or commit id names, from `git ls-remote` output."""

from __future__ import annotations

DOCUMENTATION = r"""
name: git_commit
author: flaskstack maintainers
version_added: 0.1.0
short_description: The commit a version (branch, tag or commit id) names, from git ls-remote output
description:
  - Reads the output of C(git ls-remote REPO VERSION VERSION^{}) and returns the full commit id
    VERSION stands for. An annotated tag resolves to the commit it points at (its C(^{}) line), a
    branch to its head. A tag wins over a branch of the same name, as in git.
  - When no ref matches and VERSION is a full 40-character commit id, that id is returned.
  - Fails with a message naming VERSION when it cannot be resolved, for example a short commit
    id, which the remote does not advertise.
positional: _input
options:
  _input:
    description: Output of C(git ls-remote), one C(<sha>TAB<ref>) line per ref.
    type: str
    required: true
  version:
    description: The branch, tag or full commit id to resolve.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Find the commit to deploy
  ansible.builtin.set_fact:
    app_commit: "{{ ls_remote.stdout | flaskstack.deploy.git_commit('v1.2.0') }}"
"""

RETURN = r"""
_value:
  description: The full 40-character commit id.
  type: str
"""

import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text

_SHA = re.compile(r"^[0-9a-f]{40}$")


def git_commit(ls_remote_output, version):
    version = to_text(version).strip()
    refs = {}
    for line in to_text(ls_remote_output).splitlines():
        parts = line.strip().split(None, 1)
        if len(parts) == 2 and _SHA.match(parts[0]):
            refs[parts[1]] = parts[0]
    for ref in ("refs/tags/%s^{}" % version, "refs/tags/%s" % version, "refs/heads/%s" % version, version):
        if ref in refs:
            return refs[ref]
    if _SHA.match(version.lower()):
        return version.lower()
    raise AnsibleFilterError(
        "the repository has no branch or tag named %r; give a branch, a tag or a full "
        "40-character commit id" % version
    )


class FilterModule:
    def filters(self):
        return {"git_commit": git_commit}
