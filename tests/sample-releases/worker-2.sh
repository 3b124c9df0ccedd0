# Run by tests/sample-repo.sh in the work tree of the worker branch: the job's code changes, so
# that a job shows which release's worker ran it.
sed -i 's/^MARKER = "worker-1"$/MARKER = "worker-2"/' guestbook/tasks.py
grep -q '^MARKER = "worker-2"$' guestbook/tasks.py
