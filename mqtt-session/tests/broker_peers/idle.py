#!/usr/bin/env python3
"""Resident memory of idle connections: starts a broker on a free 127.0.0.1 port, opens N
MQTT 3.1.1 connections that send a CONNECT and then nothing, and prints the broker's
resident memory (VmRSS) above what it had with 10 connections, per connection.

    python3 idle.py --clients 9000 -- target/release/mqtt-broker --bind 127.0.0.1:{port}
    python3 idle.py --clients 9000 -- mosquitto -p {port}
    python3 idle.py --clients 9000 --keep-alive 60 -- ...   # clients with a keep-alive

`{port}` in the command is replaced by the port. The file-descriptor limit is raised to
the hard limit (each connection costs one here and one in the broker), so N is bounded by
it. Every wait is bounded; the broker is killed at the end.
"""
import argparse
import resource
import socket
import subprocess
import sys
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def connect_packet(client_id, keep_alive=0):
    cid = client_id.encode()
    body = (b"\x00\x04MQTT\x04\x02" + keep_alive.to_bytes(2, "big")
            + len(cid).to_bytes(2, "big") + cid)
    return bytes([0x10, len(body)]) + body


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=9000)
    ap.add_argument("--keep-alive", type=int, default=0,
                    help="the clients' Keep Alive in seconds (default 0: none)")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not cmd:
        sys.exit("usage: idle.py --clients N -- BROKER ARGS ({port} is replaced)")
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if 2 * a.clients + 100 > hard:
        sys.exit(f"--clients {a.clients} needs {2 * a.clients + 100} file descriptors; the limit is {hard}")
    port = free_port()
    broker = subprocess.Popen([c.replace("{port}", str(port)) for c in cmd],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    sys.exit("the broker did not listen within 10 s")
                time.sleep(0.05)
        socks = []

        def open_clients(n, first):
            for i in range(first, first + n):
                s = socket.create_connection(("127.0.0.1", port), timeout=10)
                s.sendall(connect_packet(f"idle-{i}", a.keep_alive))
                socks.append(s)
            for s in socks[-n:]:
                ack = s.recv(4)
                if ack != b"\x20\x02\x00\x00":
                    sys.exit(f"unexpected CONNACK {ack.hex()}")

        open_clients(10, 10_000_000)
        time.sleep(0.5)
        before = rss_kib(broker.pid)
        open_clients(a.clients, 0)
        time.sleep(1)
        after = rss_kib(broker.pid)
        per = (after - before) * 1024 / a.clients
        print(f"{a.clients} idle clients: {after - before} KiB above 10 "
              f"({per:.0f} bytes each); VmRSS {before} -> {after} KiB")
    finally:
        broker.kill()
        broker.wait(timeout=10)


if __name__ == "__main__":
    main()
