"""Peak RSS of the API serving one unauthenticated 100 MB `POST /runs` (issue 11 §5).

Starts `sunbeam-api` (with `--src DIR`: that source tree of sunbeam_api instead, e.g. an older
commit's `api/src` from `git archive`), sends the body, and prints the server's VmHWM before and
after the request. No MongoDB or Prefect is needed: the request never reaches them.

    uv run python benchmarks/bench_api_body.py [--src DIR] [--mb 100]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def wait_up(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("sunbeam-api exited")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("sunbeam-api did not start")


def post_huge(port: int, megabytes: int) -> str:
    """Stream a valid JSON body of exactly `megabytes` MiB without credentials; the status line."""
    size = megabytes * 1024 * 1024
    prefix, suffix = b'{"ref": "main", "parameters": {"x": "', b'"}}'
    filler = size - len(prefix) - len(suffix)
    block = b"a" * (1024 * 1024)
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        head = (
            f"POST /runs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {size}\r\n\r\n"
        )
        try:
            sock.sendall(head.encode() + prefix)
            while filler > 0:
                sock.sendall(block[:filler])
                filler -= len(block)
            sock.sendall(suffix)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused early and closed
        return sock.recv(4096).decode(errors="replace").split("\r\n")[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--src", help="a sunbeam_api source tree to run instead")
    parser.add_argument("--mb", type=int, default=100)
    args = parser.parse_args()
    port = free_port()
    env = os.environ | {"SUNBEAM_API_PORT": str(port), "SUNBEAM_API_KEY": "bench-key"}
    if args.src:
        env["PYTHONPATH"] = args.src
    code = "from sunbeam_api.main import run; run()"
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.DEVNULL)
    try:
        wait_up(port, proc)
        before = peak_rss_mb(proc.pid)
        status = post_huge(port, args.mb)
        print(f"answer: {status}; peak RSS {before:.0f} MB idle -> {peak_rss_mb(proc.pid):.0f} MB")
    finally:
        proc.terminate()
        proc.wait(timeout=20)


if __name__ == "__main__":
    main()
