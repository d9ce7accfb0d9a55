"""gunicorn reads this file from the working directory by default (web in Procfile, Dockerfile, compose).

Threaded workers (gthread): a request mostly waits on PostgreSQL, so a few threads per process
keep the cores busy where sync workers would queue the callers (webhook pushes at 100 a second
on 2 cores). Processes come from --workers (2 a core is a fair start), threads from
GUNICORN_THREADS; keep-alive lets API clients and webhook senders reuse their connections.

With PROMETHEUS_MULTIPROC_DIR set, each worker writes its metrics to files there; a worker that
exits must be marked dead, or its live gauges would be reported for ever.

Each worker tunes Python's garbage collector once it has loaded the application
(project/runtime.py): no pause of 100-200 ms for a full collection in one request of thirty.
"""

import os

worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
keepalive = 5


def post_worker_init(worker):
    from django.urls import get_resolver

    from project.runtime import gc_tune

    # The URL patterns import every view and serializer: loaded before what the worker keeps is frozen.
    get_resolver().url_patterns  # noqa: B018
    gc_tune()


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
