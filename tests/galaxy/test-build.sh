#!/usr/bin/env bash
# Build the collection tarball, install it the way a user does, and use it by FQCN with no
# trace of this checkout on Ansible's paths:
#   - ansible-galaxy collection build; the tarball holds the collection and nothing of the
#     test bed (caches, virtualenv, Molecule, scripts, sample app) and stays small;
#   - ansible-galaxy collection install --offline into an empty directory;
#   - ansible-doc prints the documentation of every role under roles/ and every filter
#     plugin under plugins/filter/ (a new role or filter is covered without editing this);
#   - ansible-playbook flaskstack.deploy.site --syntax-check against the installed copy;
#   - the execution environment: its definition matches ansible-builder's schema
#     (ansible-lint), `ansible-builder create` makes the build context of
#     execution-environment.yml with the tarball, and `ansible-builder introspect` reads the
#     installed copy's meta/execution-environment.yml.
# The collections the tarball depends on (galaxy.yml) ship in the `ansible` package: with
# --offline, ansible-galaxy resolves them from there instead of asking Galaxy.
#   tests/galaxy/test-build.sh                build, check, install into a temporary directory
#   tests/galaxy/test-build.sh --install DIR  install into DIR (kept) for a later run by FQCN
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MAX_KIB=${FLASKSTACK_TARBALL_MAX_KIB:-512}
install_dir=""
if [ "${1:-}" = "--install" ]; then
  install_dir=${2:?usage: $0 [--install DIR]}
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/flaskstack-galaxy.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# Nothing of this checkout on Ansible's paths: no ansible.cfg (its roles_path points at
# roles/), no roles path, collections only from the install directory and the `ansible`
# package.
mkdir -p "$work/empty"
: >"$work/ansible.cfg"
export ANSIBLE_CONFIG="$work/ansible.cfg" ANSIBLE_NOCOLOR=1
export ANSIBLE_ROLES_PATH="$work/empty"
export ANSIBLE_COLLECTIONS_PATH="$work/empty"
unset ANSIBLE_COLLECTIONS_PATHS
cd "$work"

echo "== ansible-galaxy collection build"
ansible-galaxy collection build --output-path "$work/dist" "$ROOT" >/dev/null
version=$(sed -n 's/^version: *//p' "$ROOT/galaxy.yml")
tarball="$work/dist/flaskstack-deploy-$version.tar.gz"
[ -f "$tarball" ] || fail "no $tarball"
size_kib=$(( $(stat -c %s "$tarball") / 1024 ))
tar -tzf "$tarball" | sed 's|/$||' | sort >"$work/contents"
echo "   $(wc -l <"$work/contents") entries, $size_kib KiB"
[ "$size_kib" -le "$MAX_KIB" ] || fail "the tarball is $size_kib KiB (limit $MAX_KIB KiB); check build_ignore"

# What a user needs is in; the test bed is out.
for want in MANIFEST.json FILES.json README.md LICENSE CHANGELOG.md changelogs/changelog.yaml \
  meta/runtime.yml meta/execution-environment.yml playbooks/site.yml \
  inventories/example/hosts.yml docs/awx.md; do
  grep -qx "$want" "$work/contents" || fail "$want is missing from the tarball"
done
for role in "$ROOT"/roles/*/; do
  role=$(basename "$role")
  grep -qx "roles/$role/meta/argument_specs.yml" "$work/contents" || fail "role $role is missing from the tarball"
done
if grep -E '(^|/)(\.cache|\.venv|\.git|\.ci|\.config|\.pytest_cache|\.molecule|__pycache__|molecule|scripts|examples|secrets)(/|$)|\.pyc$|\.tar\.gz$|^inventories/demo|^tests/galaxy|^changelogs/\.plugin-cache' \
  "$work/contents"; then
  fail "the entries above belong to the test bed, not to the tarball; add them to build_ignore"
fi

echo "== ansible-galaxy collection install --offline"
target=${install_dir:-$work/collections}
rm -rf "$target/ansible_collections/flaskstack/deploy"
mkdir -p "$target"
export ANSIBLE_COLLECTIONS_PATH="$target"
ansible-galaxy collection install --offline -p "$target" "$tarball" >"$work/install.log" 2>&1 \
  || { cat "$work/install.log"; fail "ansible-galaxy collection install"; }
installed="$target/ansible_collections/flaskstack/deploy"
[ -f "$installed/MANIFEST.json" ] || fail "not installed in $installed"
found=$(ansible-galaxy collection list flaskstack.deploy --format json)
case "$found" in
  *"\"$target/ansible_collections\""*) ;;
  *) fail "flaskstack.deploy resolves elsewhere than $target: $found" ;;
esac

echo "== ansible-doc of every role and filter plugin (installed copy)"
# One ansible-doc per plugin type (each start costs seconds); every name must have its part.
roles=$(cd "$installed/roles" && ls -d -- */ | tr -d / | sed 's/^/flaskstack.deploy./')
[ "$roles" = "$(cd "$ROOT/roles" && ls -d -- */ | tr -d / | sed 's/^/flaskstack.deploy./')" ] \
  || fail "the installed roles differ from the checkout's"
# shellcheck disable=SC2086
ansible-doc -t role $roles >"$work/roles.txt" 2>&1 || { cat "$work/roles.txt"; fail "ansible-doc -t role"; }
for role in $roles; do
  # The role's part: from its "> ROLE:" line to the next one.
  awk -v r="$role" '/^> ROLE: /{on = (index($0, r "*") || index($0, r " "))} on' "$work/roles.txt" >"$work/role.txt"
  [ -s "$work/role.txt" ] || fail "ansible-doc prints nothing for $role"
  grep -q '^ENTRY POINT: \*\{0,1\}main\*\{0,1\} - ' "$work/role.txt" || fail "$role documents no main entry point"
  echo "   role   $role"
done
filters=$(cd "$installed/plugins/filter" && ls -- *.py | sed 's/\.py$//; s/^/flaskstack.deploy./')
# shellcheck disable=SC2086
ansible-doc -t filter $filters >"$work/filters.txt" 2>&1 || { cat "$work/filters.txt"; fail "ansible-doc -t filter"; }
for filter in $filters; do
  awk -v n="${filter##*.}" '/^> FILTER /{on = (index($0, "flaskstack.deploy." n " ") || index($0, "flaskstack.deploy." n "*"))} on' "$work/filters.txt" >"$work/filter.txt"
  grep -q "^NAME: ${filter##*.}\$" "$work/filter.txt" || fail "ansible-doc prints nothing for $filter"
  grep -q "^EXAMPLES:" "$work/filter.txt" || fail "$filter has no examples"
  grep -q "^RETURN VALUES:" "$work/filter.txt" || fail "$filter documents no return value"
  echo "   filter $filter"
done
# A filter file without documentation would not be listed here.
listed=$(ansible-doc -t filter -l flaskstack.deploy | grep -c '^flaskstack\.deploy\.' || true)
[ "$listed" -eq "$(ls "$installed"/plugins/filter/*.py | wc -l)" ] || fail "ansible-doc lists $listed filters"

echo "== ansible-playbook flaskstack.deploy.site --syntax-check (installed copy)"
cat >"$work/hosts.yml" <<'INVENTORY'
all:
  children:
    webservers: {hosts: {web1: {}}}
    dbservers: {hosts: {db1: {}}}
INVENTORY
ansible-playbook -i "$work/hosts.yml" flaskstack.deploy.site --syntax-check >"$work/syntax.log" 2>&1 \
  || { cat "$work/syntax.log"; fail "syntax check of flaskstack.deploy.site"; }
for playbook in "$installed"/playbooks/*.yml; do
  name=$(basename "$playbook" .yml)
  ansible-playbook -i "$work/hosts.yml" "flaskstack.deploy.$name" --syntax-check >/dev/null \
    || fail "syntax check of flaskstack.deploy.$name"
  echo "   playbook flaskstack.deploy.$name"
done
echo "== execution environment (schema, ansible-builder create, introspect)"
# The project-wide ansible-lint run does not pick this file up; named, it is checked against
# ansible-builder's schema.
(cd "$ROOT" && ansible-lint --offline --nocolor execution-environment.yml >"$work/ee-lint.log" 2>&1) \
  || { cat "$work/ee-lint.log"; fail "execution-environment.yml does not match ansible-builder's schema"; }
mkdir -p "$work/ee/dist"
cp "$ROOT/execution-environment.yml" "$ROOT/requirements.yml" "$work/ee/"
cp "$tarball" "$work/ee/dist/"
(cd "$work/ee" && ansible-builder create -f execution-environment.yml -c context >"$work/ee.log" 2>&1) \
  || { cat "$work/ee.log"; fail "ansible-builder create"; }
[ -f "$work/ee/context/_build/flaskstack/$(basename "$tarball")" ] || fail "the tarball is not in the EE build context"
grep -q 'ansible-galaxy collection install .*flaskstack-deploy-\*\.tar\.gz' "$work/ee/context/"*file \
  || fail "the EE build does not install flaskstack.deploy"
ansible-builder introspect "$target" >"$work/introspect.log" 2>&1 || { cat "$work/introspect.log"; fail "ansible-builder introspect"; }
grep -q "from collection flaskstack.deploy" "$work/introspect.log" \
  || { cat "$work/introspect.log"; fail "ansible-builder finds no dependencies of flaskstack.deploy"; }
echo "   build context and collection dependencies OK"

echo "OK: flaskstack.deploy $version builds, installs and runs by FQCN from $tarball"
