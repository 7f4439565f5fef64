"""Container health check: GET a local health endpoint, healthy only on HTTP 200.

The agent's endpoint is the Prefect worker's own (`/health` on PREFECT_WORKER_WEBSERVER_PORT),
which answers 200 only while the worker keeps polling its work pool. The API container points
SUNBEAM_HEALTHCHECK_URL at the API's health route instead. Standard library only, so it runs
in any interpreter the image has.
"""

import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    port = os.environ.get("PREFECT_WORKER_WEBSERVER_PORT", "8080")
    url = os.environ.get("SUNBEAM_HEALTHCHECK_URL") or f"http://127.0.0.1:{port}/health"
    try:
        with urllib.request.urlopen(url, timeout=4) as resp:
            ok = resp.status == 200
    except (urllib.error.URLError, OSError) as exc:
        print(f"unhealthy: {url}: {exc}")
        return 1
    print(f"{'healthy' if ok else 'unhealthy'}: {url}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
