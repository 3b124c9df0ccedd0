#!/usr/bin/env python3
"""Run a command under steady HTTPS load (tests/loadgen.py) and print what the load saw.

    load.py ADDRESS HOST LABEL -- COMMAND...

Prints the load's report and a last line `LOAD <failed> <requests> <p50 ms> <p99 ms>
<seconds the command took>`. Exits with the command's status.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from loadgen import Load  # noqa: E402


def main():
    address, host, label = sys.argv[1:4]
    command = sys.argv[sys.argv.index("--") + 1:]
    with Load(address, host) as load:
        start = time.monotonic()
        run = subprocess.run(command)
        took = time.monotonic() - start
    print(load.report(label))
    print("LOAD %d %d %.0f %.0f %.1f" % (load.failed, load.total, load.percentile(0.50) * 1000,
                                        load.percentile(0.99) * 1000, took))
    return run.returncode


if __name__ == "__main__":
    sys.exit(main())
