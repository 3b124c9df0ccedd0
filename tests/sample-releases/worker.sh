# Run by tests/sample-repo.sh in the work tree: the guestbook with an RQ queue. Its requirements
# gain rq, and the views module loads the routes that enqueue jobs (worker/guestbook/queueing.py).
printf '%s\n' rq==2.6.1 redis==6.4.0 >> requirements.txt
printf '\n%s\n' 'from . import queueing  # noqa: E402,F401  (registers /jobs on bp)' >> guestbook/views.py
