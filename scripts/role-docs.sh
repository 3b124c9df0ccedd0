#!/usr/bin/env bash
# The variable tables of the role READMEs, generated from each role's meta/argument_specs.yml
# (the one place a variable is documented: type, default, choices, description) with aar-doc
# (requirements-dev.txt) and the template scripts/role-docs/variables.md.j2. aar-doc rewrites
# only the part of roles/<role>/README.md between the lines
#   <!-- BEGIN_ANSIBLE_DOCS -->  and  <!-- END_ANSIBLE_DOCS -->
# and leaves the prose and examples around them as written.
#   scripts/role-docs.sh           regenerate the tables of every role's README
#   scripts/role-docs.sh --lint    check that every README's tables are what its
#                                  argument_specs make (--check is the same)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

template=scripts/role-docs/variables.md.j2
command -v aar-doc >/dev/null \
  || { echo "aar-doc not found: it is pinned in requirements-dev.txt (source .venv/bin/activate)" >&2; exit 1; }

# generate ROLE_DIR FILE: FILE (a copy of the role's README) with its tables regenerated.
generate() {
  if ! grep -qx '<!-- BEGIN_ANSIBLE_DOCS -->' "$2" || ! grep -qx '<!-- END_ANSIBLE_DOCS -->' "$2"; then
    echo "$1/README.md has no <!-- BEGIN_ANSIBLE_DOCS --> and <!-- END_ANSIBLE_DOCS --> lines for its variable tables" >&2
    exit 1
  fi
  # aar-doc reads an .aar_doc.yml of the current directory; there is none here.
  aar-doc --output-file "$2" --output-template "$template" --output-mode inject "$1" markdown >"$work/aar-doc.log" 2>&1 \
    || { cat "$work/aar-doc.log" >&2; echo "aar-doc failed on $1" >&2; exit 1; }
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

case "${1:-}" in
  --lint | --check)
    status=0
    for role in roles/*/; do
      role=${role%/}
      cp "$role/README.md" "$work/README.md"
      generate "$role" "$work/README.md"
      if ! diff -u "$role/README.md" "$work/README.md"; then
        echo "$role/README.md differs from what $role/meta/argument_specs.yml makes (above): run scripts/role-docs.sh and commit it" >&2
        status=1
      fi
    done
    exit "$status"
    ;;
  "")
    for role in roles/*/; do
      role=${role%/}
      cp "$role/README.md" "$work/README.md"
      generate "$role" "$work/README.md"
      if cmp -s "$role/README.md" "$work/README.md"; then
        echo "$role/README.md up to date"
      else
        cp "$work/README.md" "$role/README.md"
        echo "$role/README.md regenerated"
      fi
    done
    ;;
  *) sed -n '2,10p' "$0"; exit 2 ;;
esac
