#!/usr/bin/env bash
# The changelog, kept with antsibull-changelog: each change is a fragment file
# changelogs/fragments/<topic>.yml (sections: see changelogs/config.yaml, e.g.
# "minor_changes:\n  - nginx - new option ..."); a release folds the fragments into
# changelogs/changelog.yaml, from which CHANGELOG.md is generated.
#   scripts/changelog.sh --lint      check the fragments, changelogs/changelog.yaml and that
#                                    CHANGELOG.md is what they make
#   scripts/changelog.sh             regenerate CHANGELOG.md; changes not released yet are
#                                    shown under galaxy.yml's version, marked "unreleased"
#   scripts/changelog.sh --release   release galaxy.yml's version (consumes the fragments)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

version=$(sed -n 's/^version: *//p' galaxy.yml)

# generate FILE: CHANGELOG.md as the fragments and changelogs/changelog.yaml make it.
generate() {
  # Released versions come from changelogs/changelog.yaml as they are; pending fragments
  # are released into a scratch copy, and only the generated text is kept.
  local work
  work=$(mktemp -d)
  cp -r changelogs galaxy.yml meta plugins roles "$work/"
  rm -f "$work/changelogs/.plugin-cache.yaml"
  if ls changelogs/fragments/*.yml >/dev/null 2>&1 \
    && ! grep -q "^  $version:" changelogs/changelog.yaml; then
    (cd "$work" && antsibull-changelog release --version "$version" >/dev/null)
    # The generated heading escapes its dots: "## v0\.1\.0".
    perl -pi -e 's/^(## v\Q'"${version//./\\.}"'\E)$/$1 (unreleased)/' "$work/CHANGELOG.md"
  else
    (cd "$work" && antsibull-changelog generate >/dev/null)
  fi
  cp "$work/CHANGELOG.md" "$1"
  rm -rf "$work"
}

case "${1:-}" in
  --lint)
    antsibull-changelog lint
    antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml
    # The committed CHANGELOG.md must be what the fragments make.
    expected=$(mktemp)
    generate "$expected"
    if ! diff -u CHANGELOG.md "$expected"; then
      rm -f "$expected"
      echo "CHANGELOG.md differs from what the fragments make (above): run scripts/changelog.sh and commit it" >&2
      exit 1
    fi
    rm -f "$expected"
    ;;
  --release)
    antsibull-changelog release --version "$version"
    ;;
  "")
    generate CHANGELOG.md
    echo "CHANGELOG.md regenerated"
    ;;
  *) sed -n '2,12p' "$0"; exit 2 ;;
esac
