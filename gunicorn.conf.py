"""gunicorn reads this file from the working directory by default (web in Procfile, Dockerfile, compose).

With PROMETHEUS_MULTIPROC_DIR set, each worker writes its metrics to files there; a worker that
exits must be marked dead, or its live gauges would be reported for ever.
"""

import os


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
