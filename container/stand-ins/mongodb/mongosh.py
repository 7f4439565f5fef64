#!/usr/bin/python3 -IS
"""The one `mongosh` call docker-compose.yml makes: its health check's ping.

`mongosh [--quiet] [--norc] [--host H] [--port P] --eval "...db.adminCommand('ping')..."` exits 0
when the server answers ping (no credentials needed, as with mongod) and 1 otherwise. Anything else
is refused: this image is a stand-in, not a shell. Standard library only, and no site-packages,
so the check stays cheap on a busy machine: one OP_MSG over a socket.
"""

import argparse
import socket
import struct
import sys

OP_MSG = 2013
# BSON {ping: 1, $db: "admin"}
_DOC = b"\x10ping\x00" + struct.pack("<i", 1) + b"\x02$db\x00" + struct.pack("<i", 6) + b"admin\x00"
PING = struct.pack("<i", len(_DOC) + 5) + _DOC + b"\x00"
OK_DOUBLE = b"\x01ok\x00" + struct.pack("<d", 1.0)
OK_INT = b"\x10ok\x00" + struct.pack("<i", 1)


def ping(host: str, port: int, timeout: float = 4.0) -> bool:
    body = struct.pack("<I", 0) + b"\x00" + PING
    header = struct.pack("<iiii", 16 + len(body), 1, 0, OP_MSG)
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(header + body)
        reply = b""
        while len(reply) < 4 or len(reply) < struct.unpack("<i", reply[:4])[0]:
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    return OK_DOUBLE in reply or OK_INT in reply


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
        ok = ping(args.host, args.port)
    except OSError as exc:
        print(f"ping failed: {exc}", file=sys.stderr)
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
