#!/opt/secantus/bin/python
"""The one `mongosh` call docker-compose.yml makes: its health check's ping.

`mongosh [--quiet] [--norc] [--host H] [--port P] --eval "...db.adminCommand('ping')..."` exits 0
when the server answers ping (no credentials needed, as with mongod) and 1 otherwise. Anything else
is refused: this image is a stand-in, not a shell.
"""

from __future__ import annotations

import argparse
import sys

from pymongo import MongoClient
from pymongo.errors import PyMongoError


def main() -> int:
    parser = argparse.ArgumentParser(prog="mongosh")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--norc", action="store_true")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=27017)
    parser.add_argument("--eval", required=True)
    args = parser.parse_args()
    if "ping" not in args.eval:
        print(
            "mongosh stand-in: only the health check's db.adminCommand('ping') is supported",
            file=sys.stderr,
        )
        return 2
    try:
        with MongoClient(
            host=args.host, port=args.port, directConnection=True, serverSelectionTimeoutMS=3000
        ) as client:
            ok = client.admin.command("ping").get("ok") == 1
    except PyMongoError as exc:
        print(f"ping failed: {exc}", file=sys.stderr)
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
