"""The container's health check: GET /healthz on this container's gunicorn, exit 0 on a 200.

    python -m project.healthcheck      (Dockerfile HEALTHCHECK, docker-compose.yml)

Django refuses a Host header that ALLOWED_HOSTS does not list, so the check sends the first
host named there (a ".example.com" pattern as "www.example.com"); PORT picks another port.
Standard library only: it must not start Django."""

from __future__ import annotations

import http.client
import os
import sys


def host_header(allowed: str) -> str:
    first = next((name.strip() for name in allowed.split(",") if name.strip()), "localhost")
    if first == "*":
        return "localhost"
    return f"www{first}" if first.startswith(".") else first


def main() -> int:
    port = int(os.environ.get("PORT", "8000"))
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/healthz", headers={"Host": host_header(os.environ.get("ALLOWED_HOSTS", ""))})
        status = connection.getresponse().status
    except OSError as exc:
        print(f"healthz: {exc}", file=sys.stderr)
        return 1
    finally:
        connection.close()
    if status != 200:
        print(f"healthz answered {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
