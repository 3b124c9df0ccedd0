# Run by tests/sample-repo.sh in the work tree before the shape-modern overlay is laid on:
# the package moves to a src/ layout (importable only once installed), and the files of the
# requirements-and-wsgi.py shape go.
mkdir src
git mv guestbook src/guestbook
git rm -q requirements.txt wsgi.py .flaskenv
