#!/usr/bin/env python3
"""Times WAIT on one master with one replica in sync: SET, then WAIT 1 0, N times.

Used by ci/bench's replication section, for our server and redis-server alike. Redis asks its
replicas for an ACK before it sleeps and wakes the waiting client when the ACK arrives, so a
WAIT costs about one round trip to the replica; this prints the median and p99 of that time.

Usage: wait-latency.py PORT N
Prints two lines: "wait_median_us V" and "wait_p99_us V". Exits 1 if a reply is not the
expected one (WAIT must count the one replica).
"""
import socket
import sys
import time


def command(sock, reader, *args):
    frame = f"*{len(args)}\r\n" + "".join(f"${len(a)}\r\n{a}\r\n" for a in args)
    sock.sendall(frame.encode())
    return reader.readline(1 << 16).decode().rstrip("\r\n")


def main():
    port, n = int(sys.argv[1]), int(sys.argv[2])
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    reader = sock.makefile("rb")
    times_us = []
    for i in range(n):
        if command(sock, reader, "SET", f"wait:{i}", "v") != "+OK":
            sys.exit("SET failed")
        start = time.perf_counter()
        reply = command(sock, reader, "WAIT", "1", "0")
        times_us.append((time.perf_counter() - start) * 1e6)
        if reply != ":1":
            sys.exit(f"WAIT 1 0 answered {reply}")
    times_us.sort()
    print(f"wait_median_us {times_us[len(times_us) // 2]:.1f}")
    print(f"wait_p99_us {times_us[min(len(times_us) - 1, len(times_us) * 99 // 100)]:.1f}")


if __name__ == "__main__":
    main()
