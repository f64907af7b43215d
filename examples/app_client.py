#!/usr/bin/env python3
"""An application on the phone, talking to its edgeshift service through the UE's
application gateway (docs/app-protocol.md): each message is a 4-byte big-endian length
and the bytes; the n-th answer answers the n-th input, exactly once.

    python3 examples/app_client.py --addr 127.0.0.1:7300 --inputs 300

With --hasher-seed S it checks every answer against the running hash that the test
service `hasher` (crates/cli/tests/cli.rs) keeps: h = h * 31 + byte over every input byte,
starting from S, answered as 8 little-endian bytes. Exit status 0 only if all answers came,
in order, and (with --hasher-seed) all were right.
"""

import argparse
import socket
import struct
import sys
import time


def connect(addr, wait_s):
    host, port = addr.rsplit(":", 1)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            s = socket.create_connection((host, int(port)))
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return s
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def read_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError("the UE closed the connection")
        buf += chunk
    return buf


def call(s, payload):
    s.sendall(struct.pack(">I", len(payload)) + payload)
    (n,) = struct.unpack(">I", read_exact(s, 4))
    return read_exact(s, n)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--addr", default="127.0.0.1:7300")
    p.add_argument("--inputs", type=int, default=300)
    p.add_argument("--period-ms", type=float, default=20.0)
    p.add_argument("--wait", type=float, default=60.0, help="seconds to wait for the UE")
    p.add_argument("--hasher-seed", type=int, default=None)
    a = p.parse_args()

    s = connect(a.addr, a.wait)
    h = a.hasher_seed
    wrong = 0
    for i in range(a.inputs):
        payload = f"python input {i}".encode()
        answer = call(s, payload)
        if h is not None:
            for b in payload:
                h = (h * 31 + b) % (1 << 64)
            if answer != struct.pack("<Q", h):
                wrong += 1
        time.sleep(a.period_ms / 1000)
    s.shutdown(socket.SHUT_WR)
    if s.recv(1):
        print("an answer that no input asked for", file=sys.stderr)
        return 1
    print(f"{a.inputs} inputs, {a.inputs} answers, {wrong} wrong")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
