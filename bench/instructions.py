"""Instructions a request costs: pages and API calls counted under valgrind, not timed.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/socialitsm_scale \\
        python bench/instructions.py /api/v1/incidents/ /incidents/INC5099999/ [-k 10]

On a machine whose speed drifts (a shared 2-core machine's did by a third within minutes), wall
and CPU times of two versions of the code can only be compared run against run. The number of
instructions the Python process executes for a request does not drift: this runs the request
k times under valgrind's callgrind (about 50 times slower) and once with none, each after the
same three warm-up requests, and prints the difference per request in millions of instructions.
PostgreSQL's own work is left out (another process): the queries' count and plans are what
bench/scale.py prints. Needs valgrind (Debian: apt-get install valgrind) and the database
bench/scale.py seeded, as the user it signs in as.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent


def requests(url: str, count: int) -> None:
    """In the process valgrind runs: the seeded lead's requests of `url`."""
    sys.path.insert(0, str(HERE))
    import scale  # sets Django up as bench/scale.py does
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.test import Client, override_settings

    client = Client()
    client.force_login(User.objects.get(username=f"{scale.MARK}-lead"))
    unlimited = {"api_user": None, "api_address": None, "api_auth_failure": None, "ingest": None}
    storages = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    with override_settings(SOCIALITSM_THROTTLE_RATES=unlimited, STORAGES=storages):
        for _ in range(3 + count):
            status = client.get(url, secure=True).status_code
            if status != 200:
                raise SystemExit(f"{url}: {status}")


def counted(url: str, count: int) -> int:
    """Instructions of a process that makes `count` requests of `url` after the warm-up."""
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        __file__,
        "--requests",
        url,
        "-k",
        str(count),
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ, check=False)  # noqa: S603
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"{url}: valgrind failed\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("urls", nargs="+")
    parser.add_argument("-k", type=int, default=10, help="counted requests per URL")
    parser.add_argument("--requests", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.requests:
        requests(args.urls[0], args.k)
        return
    jobs = [(url, n) for url in args.urls for n in (0, args.k)]
    with ThreadPoolExecutor(max(1, os.cpu_count() or 1)) as pool:
        found = dict(zip(jobs, pool.map(lambda job: counted(*job), jobs), strict=True))
    for url in args.urls:
        per_request = (found[(url, args.k)] - found[(url, 0)]) / args.k
        print(f"{url:<60} {per_request / 1e6:8.1f} million instructions a request")


if __name__ == "__main__":
    main()
