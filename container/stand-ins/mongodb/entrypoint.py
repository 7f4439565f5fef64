"""The parts of the official mongo image's entrypoint that docker-compose.yml relies on.

`mongod [--bind_ip H | --bind_ip_all] [--port P] [--dbpath D]` runs SecantusDB there. With
MONGO_INITDB_ROOT_USERNAME and MONGO_INITDB_ROOT_PASSWORD set, the first start on an empty data
directory creates that user (role `root` on `admin`), and every start requires SCRAM-SHA-256
authentication, as mongod's `--auth` does. SIGTERM and SIGINT stop the server cleanly (exit 0).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path
from types import FrameType

from pymongo import MongoClient
from secantus import SecantusDBServer

MARKER = ".sunbeam-stand-in-initialised"
log = logging.getLogger("mongodb-stand-in")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="mongod", description="SecantusDB as mongod")
    parser.add_argument("--bind_ip", default="0.0.0.0")
    parser.add_argument("--bind_ip_all", action="store_true")
    parser.add_argument("--port", type=int, default=27017)
    parser.add_argument("--dbpath", default="/data/db")
    parser.add_argument("--auth", action="store_true")
    args = parser.parse_args(argv)
    if args.bind_ip_all:
        args.bind_ip = "0.0.0.0"
    return args


def root_credentials() -> tuple[str, str] | None:
    user = os.environ.get("MONGO_INITDB_ROOT_USERNAME", "")
    password = os.environ.get("MONGO_INITDB_ROOT_PASSWORD", "")
    if bool(user) != bool(password):
        sys.exit(
            "mongodb stand-in: set both MONGO_INITDB_ROOT_USERNAME and "
            "MONGO_INITDB_ROOT_PASSWORD, or neither"
        )
    return (user, password) if user else None


def provision(dbpath: Path, user: str, password: str) -> None:
    """First start: create the root user on a loopback-only, auth-less server, then stop it."""
    log.info("initialising %s with root user %s", dbpath, user)
    server = SecantusDBServer(host="127.0.0.1", port=0, storage_path=str(dbpath))
    server.start()
    try:
        with MongoClient(host="127.0.0.1", port=server.port, directConnection=True) as client:
            client.admin.command(
                "createUser", user, pwd=password, roles=[{"role": "root", "db": "admin"}]
            )
    finally:
        server.stop()
    (dbpath / MARKER).write_text("root user created\n")


def main(argv: list[str]) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if argv and argv[0] != "mongod":
        os.execvp(argv[0], argv)
    args = parse(argv[1:])
    dbpath = Path(args.dbpath)
    dbpath.mkdir(parents=True, exist_ok=True)
    creds = root_credentials()
    if creds and not (dbpath / MARKER).exists():
        provision(dbpath, *creds)
    server = SecantusDBServer(
        host=args.bind_ip,
        port=args.port,
        storage_path=str(dbpath),
        require_auth=bool(creds) or args.auth,
        enable_test_commands=False,
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: shutting down", signum)
        server.stop()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.start()
    log.info(
        "waiting for connections on %s:%d (auth %s)",
        args.bind_ip,
        args.port,
        "on" if server.require_auth else "off",
    )
    server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
