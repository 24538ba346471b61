#!/usr/bin/env python3
"""Kills the example client with SIGKILL at random moments while it publishes with a session
file, runs it again from that file, and checks that every message it had accepted is
delivered: QoS 1 at least once, QoS 2 exactly once. The broker is mosquitto.

    cargo build -p mqtt-session --example client
    python3 mqtt-session/tests/broker_peers/client_crash.py target/debug/examples/client \
        [--seed N] [--runs N]

Each run is `client --id crashpub --qos Q --session-file FILE pub crash/c mK` (QoS 1 and 2
alternately), chosen by the seed: killed 0 to 20 ms after it starts (three runs in ten),
killed 0 to 3 ms after it says it stored its message (five in ten), or left to finish.
The client says on stderr when its message is stored ("message N stored"): from then on it
is accepted, and must arrive. A last run, not killed, publishes `final` and, as every run
does, first sends again what the session file holds, and exits once all of it is
delivered. A paho-mqtt subscriber on `crash/#` (QoS 2) counts what arrives.
"""

import argparse
import collections
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mosquitto():
    for path in ("mosquitto", "/usr/sbin/mosquitto"):
        found = shutil.which(path)
        if found:
            return found
    sys.exit("mosquitto is not installed (apt install mosquitto)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("client")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--runs", type=int, default=40)
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    rng = random.Random(seed)
    print(f"seed {seed}, {args.runs} runs")

    port = free_port()
    work = tempfile.mkdtemp(prefix="mqtt-client-crash-")
    conf = os.path.join(work, "mosquitto.conf")
    with open(conf, "w") as f:
        f.write(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    broker = subprocess.Popen([mosquitto(), "-c", conf], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    counts = collections.Counter()
    lock = threading.Lock()
    subscribed = threading.Event()

    def on_message(c, u, m):
        with lock:
            counts[m.payload.decode()] += 1

    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="crashsub", protocol=mqtt.MQTTv5)
    sub.on_message = on_message
    sub.on_connect = lambda c, *a: c.subscribe("crash/#", qos=2)
    sub.on_subscribe = lambda *a: subscribed.set()
    problems = []
    try:
        deadline = time.time() + 10
        while True:
            try:
                sub.connect("127.0.0.1", port)
                break
            except OSError:
                if time.time() > deadline:
                    sys.exit("mosquitto did not listen")
                time.sleep(0.05)
        sub.loop_start()
        if not subscribed.wait(10):
            sys.exit("the subscriber did not subscribe")

        session = os.path.join(work, "session.redb")
        accepted = {}  # payload -> QoS
        killed = 0

        def run(payload, qos, kill):
            """kill: None (run to the end), ("at", s) after s seconds, or ("stored", s) s
            seconds after the client said it stored its message."""
            cmd = [os.path.abspath(args.client), "--port", str(port), "--id", "crashpub",
                   "--qos", str(qos), "--session-file", session, "pub", "crash/c", payload]
            p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            err = b""
            if kill is not None:
                how, after = kill
                if how == "stored":
                    while True:
                        line = p.stderr.readline()
                        err += line
                        if not line or b"stored in" in line:
                            break
                time.sleep(after)
                p.send_signal(signal.SIGKILL)
            out, rest = p.communicate(timeout=30)
            return p.returncode, (err + rest).decode()

        for k in range(args.runs):
            qos = 1 + k % 2
            payload = f"m{k}"
            r = rng.random()
            if r < 0.2:
                kill = None
            elif r < 0.5:
                kill = ("at", rng.uniform(0.0, 0.02))
            else:
                # Between storing and the end of the handshake: the window that matters.
                kill = ("stored", rng.uniform(0.0, 0.003))
            rc, err = run(payload, qos, kill)
            if "stored in" in err:
                accepted[payload] = qos
            if rc == -signal.SIGKILL:
                killed += 1
            elif rc != 0:
                problems.append(f"run {k} failed ({rc}): {err.strip()}")
        rc, err = run("final", 2, None)
        if rc != 0:
            problems.append(f"the last run failed ({rc}): {err.strip()}")
        accepted["final"] = 2

        time.sleep(1.0)
        with lock:
            got = dict(counts)
        missing = [p for p in accepted if got.get(p, 0) == 0]
        twice = [p for p, q in accepted.items() if q == 2 and got.get(p, 0) > 1]
        twice += [p for p in got if p.startswith("m") and int(p[1:]) % 2 == 1 and got[p] > 1]
        print(f"{args.runs} runs, {killed} killed, {len(accepted)} messages accepted, "
              f"{len(got)} distinct received")
        if missing:
            problems.append(f"accepted and never delivered: {missing}")
        if twice:
            problems.append(f"QoS 2 delivered twice: {sorted(set(twice))}")
        if killed == 0:
            problems.append("no run was killed: the test tested nothing")
    finally:
        sub.loop_stop()
        broker.terminate()
        broker.wait()

    if problems:
        print(f"FAIL (seed {seed}; session file in {work})")
        for p in problems:
            print("  " + p)
        sys.exit(1)
    shutil.rmtree(work, ignore_errors=True)
    print("PASS: every accepted message was delivered, QoS 2 once")


if __name__ == "__main__":
    main()
