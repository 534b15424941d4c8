"""``python -m workers.health``: the container health check of a worker.

Healthy means the worker process serves ``/metrics`` on ``STRATLAB_METRICS_PORT`` and its
Temporal workers have started (the SDK publishes their free task slots once they poll).
Standard library only: it runs every few seconds, so it must start fast and import
nothing of the lab. Exit 0 healthy, 1 not, with one line saying why.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

DEFAULT_PORT = 9464
STARTED_METRIC = "temporal_worker_task_slots_available"


def check(port: int, timeout: float = 3.0) -> str | None:
    """None when healthy, else why not."""
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as err:
        return f"no metrics at {url}: {err}"
    if STARTED_METRIC not in body:
        return f"{url} answers but no Temporal worker has started polling yet"
    return None


def main() -> int:
    port = int(os.environ.get("STRATLAB_METRICS_PORT") or DEFAULT_PORT)
    problem = check(port)
    if problem:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    print("healthy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
