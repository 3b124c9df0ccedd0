#!/usr/bin/env bash
# Build a bare git repository of the sample app (examples/guestbook) at DEST, as a git host
# would serve it. Commits use fixed authors and dates, so the same source always gives the
# same commit ids. Versions, each the files of tests/sample-releases/<name>/ laid over the
# previous one:
#   v1.0              examples/guestbook as it is (branch main), on an empty first commit
#   v2.0              a new migration (entries.likes) and a visible change (a version footer)
#   v2.1              a code-only change of v2.0 (its footer), no new migration or package
#   broken-import     v2.0 whose WSGI entry point fails to import
#   broken-migration  v2.0 plus a migration that fails
#   broken-probe      v2.0 whose /healthz answers 503
#   writable-dirs     v1.0 that writes logs/app.log next to its code at import time and ships
#                     uploads/avatars/.gitkeep and uploads/README.txt
#   pins-overridden   v1.0 with requirements/prod.txt (-r common.txt) pinning gunicorn==21.2.0
#                     and PyYAML==5.4.1, which no longer builds: the collection's gunicorn and an
#                     override (app_extra_pip_packages) must replace them
#   shape-modern      v1.0 as a modern package: src/ layout, pyproject.toml only (pip install .),
#                     the factory create_app('production'), SERVER_NAME required, an import
#                     that takes 6 s; shape-modern-2 is the same on v2.0
#   shape-legacy      v1.0 with the writable-dirs and pins-overridden overlays together: an
#                     older app's layout (requirements/prod.txt with old pins, logs/app.log
#                     written next to its code, uploads/ shipped); shape-legacy-2 is the same on
#                     v2.0
#   worker            v1.0 with an RQ queue: rq in its requirements, POST /jobs enqueues a job
#                     that signs the guestbook as "worker-1", GET /jobs/<id> shows its result;
#                     worker-2 is the same whose job signs as "worker-2"
# An overlay may come with tests/sample-releases/<name>.sh, run in the work tree first (to
# move or remove files, or to lay other overlays on), or consist of that script alone.
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
# v1.0 has a parent, so a shallow checkout of it (app_git_depth: 1) is visibly shallow.
GIT_AUTHOR_DATE="2025-12-01T12:00:00Z" GIT_COMMITTER_DATE="2025-12-01T12:00:00Z" \
  git -C "$work" -c commit.gpgsign=false commit -q --allow-empty -m "Start the guestbook"
git -C "$work" add -A
git -C "$work" -c commit.gpgsign=false commit -q -m "Guestbook 1.0"
git -C "$work" -c tag.gpgsign=false tag -a v1.0 -m "Guestbook 1.0"

# release NAME BASE DATE MESSAGE [REF]: a commit on BASE with the overlay NAME, tagged (v*) or
# branched REF (default NAME).
release() {
  local name=$1 base=$2 message=$4 ref=${5:-$1}
  export GIT_AUTHOR_DATE=$3 GIT_COMMITTER_DATE=$3
  git -C "$work" checkout -q --detach "$base"
  if [ -f "$root/tests/sample-releases/$name.sh" ]; then
    (cd "$work" && bash -euo pipefail "$root/tests/sample-releases/$name.sh")
  fi
  if [ -d "$root/tests/sample-releases/$name" ]; then
    cp -r "$root/tests/sample-releases/$name/." "$work/"
  fi
  git -C "$work" add -A
  git -C "$work" -c commit.gpgsign=false commit -q -m "$message"
  case $ref in
    v*) git -C "$work" -c tag.gpgsign=false tag -a "$ref" -m "$message" ;;
    *) git -C "$work" branch -q "$ref" ;;
  esac
}
release v2.0 v1.0 2026-02-01T12:00:00Z "Guestbook 2.0: likes, version footer"
release v2.1 v2.0 2026-02-15T12:00:00Z "Guestbook 2.1: footer"
release broken-import v2.0 2026-03-01T12:00:00Z "Import a module that is not there"
release broken-migration v2.0 2026-03-02T12:00:00Z "Add a migration that fails"
release broken-probe v2.0 2026-03-03T12:00:00Z "Report unhealthy"
release writable-dirs v1.0 2026-04-01T12:00:00Z "Log to logs/app.log, ship uploads/"
release pins-overridden v1.0 2026-03-04T12:00:00Z "Production requirements with old pins"
release shape-modern v1.0 2026-05-01T12:00:00Z "A src/ package with pyproject.toml, slow to import"
release shape-modern v2.0 2026-05-02T12:00:00Z "2.0 as a src/ package with pyproject.toml" shape-modern-2
release shape-legacy v1.0 2026-06-01T12:00:00Z "An older layout: requirements/prod.txt, logs/ and uploads/ in the tree"
release shape-legacy v2.0 2026-06-02T12:00:00Z "2.0 in the older layout" shape-legacy-2
release worker v1.0 2026-07-01T12:00:00Z "Background jobs on an RQ queue"
release worker-2 worker 2026-07-02T12:00:00Z "The job signs as worker-2"
git -C "$work" checkout -q main

rm -rf "$dest"
git clone -q --bare "$work" "$dest"
git -C "$dest" gc -q
echo "$dest"
