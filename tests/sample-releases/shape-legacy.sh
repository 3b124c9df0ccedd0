# Run by tests/sample-repo.sh in the work tree: the older app's layout is two overlays at once,
# the app that writes under its own directory and ships uploads/, and the pinned
# requirements/prod.txt.
here=$(dirname "$0")
cp -r "$here/writable-dirs/." "$here/pins-overridden/." .
