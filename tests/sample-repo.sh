#!/usr/bin/env bash
# Build a bare git repository of the sample app (examples/guestbook) at DEST, as a git host
# would serve it, with tag v1.0. Commits use fixed authors and dates, so the same source
# always gives the same commit ids.
set -euo pipefail
dest=${1:?usage: sample-repo.sh DEST.git}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

export GIT_AUTHOR_NAME="Guestbook Dev" GIT_AUTHOR_EMAIL="dev@guestbook.invalid"
export GIT_COMMITTER_NAME="$GIT_AUTHOR_NAME" GIT_COMMITTER_EMAIL="$GIT_AUTHOR_EMAIL"
export GIT_AUTHOR_DATE="2026-01-01T12:00:00Z" GIT_COMMITTER_DATE="2026-01-01T12:00:00Z"

cp -r "$root/examples/guestbook/." "$work/"
find "$work" -name __pycache__ -prune -exec rm -rf {} +
git -C "$work" init -q -b main
git -C "$work" add -A
git -C "$work" -c commit.gpgsign=false commit -q -m "Guestbook 1.0"
git -C "$work" -c tag.gpgsign=false tag -a v1.0 -m "Guestbook 1.0"

rm -rf "$dest"
git clone -q --bare "$work" "$dest"
git -C "$dest" gc -q
echo "$dest"
