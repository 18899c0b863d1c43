#!/usr/bin/env python3
"""Chains BGSAVEs on one server, each started as soon as the previous one ends.

Used by ci/bench to measure client latency during BGSAVE. It keeps one connection and polls
INFO persistence every 10 ms over it: the shell loop it replaces started a redis-cli, grep and
sleep process per poll, which on a 2-core machine took about a quarter of the CPU away from the
server and the benchmark being measured.

Usage: bgsave-loop.py PORT STOP_FILE DONE_FILE
Appends one line to DONE_FILE per finished save; returns once STOP_FILE exists and the running
save has ended. Exits 1 if a save fails or the server answers something unexpected.
"""
import os
import socket
import sys
import time

POLL_SECONDS = 0.01
REPLY_BYTES_MAX = 1 << 20


def command(sock, reader, *args):
    """Sends one command (RESP array) and returns its reply as a str (bulk or status)."""
    frame = f"*{len(args)}\r\n" + "".join(f"${len(a)}\r\n{a}\r\n" for a in args)
    sock.sendall(frame.encode())
    line = reader.readline(REPLY_BYTES_MAX).decode()
    if line.startswith("$"):
        length = int(line[1:])
        body = reader.read(length + 2).decode()
        return body[:-2]
    if line.startswith("+") or line.startswith("-"):
        return line.rstrip("\r\n")
    raise RuntimeError(f"unexpected reply: {line!r}")


def main():
    port, stop_file, done_file = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    reader = sock.makefile("rb")
    while True:
        info = command(sock, reader, "INFO", "persistence")
        if "rdb_bgsave_in_progress:0" not in info:
            time.sleep(POLL_SECONDS)
            continue
        if "rdb_last_bgsave_status:ok" not in info:
            print(f"BGSAVE on port {port} failed", file=sys.stderr)
            return 1
        with open(done_file, "a") as f:
            f.write("done\n")
        if os.path.exists(stop_file):
            return 0
        reply = command(sock, reader, "BGSAVE")
        if reply != "+Background saving started":
            print(f"BGSAVE on port {port}: {reply}", file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main())
