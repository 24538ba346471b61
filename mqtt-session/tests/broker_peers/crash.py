#!/usr/bin/env python3
"""Kills the broker program with SIGKILL at random moments during QoS 1 and QoS 2 traffic to
durable sessions, restarts it from the same --persist directory, and checks that nothing
acknowledged was lost.

    cargo build -p mqtt-session --features cli --bin mqtt-broker
    python3 mqtt-session/tests/broker_peers/crash.py target/debug/mqtt-broker \
        [--seed N] [--kills N] [--rate MSGS_PER_S]

The world (paho-mqtt 2 clients, all on 127.0.0.1, the broker on one free port):
- `pub`, MQTT 5.0, a session that never expires, publishes numbered messages as fast as
  --rate allows, alternately QoS 1 to `crash/q1/N` and QoS 2 to `crash/q2/N`, and at each
  kill a retained QoS 1 message on `crash/state`; paho resends what is unacknowledged
  after each reconnect;
- `sub5`, MQTT 5.0 with a Session Expiry Interval of an hour, and `sub3`, MQTT 3.1.1 with
  a persistent session, subscribe once, at the start, to `crash/#` at QoS 2, and then only
  reconnect: their subscriptions must survive every restart.

The broker is killed --kills times, each after a seeded random 0.5 to 3 s, and restarted
after a seeded random 0 to 0.5 s. After the last restart the publisher stops and the script
waits (up to 30 s) for the deliveries to settle, then checks:
- every message acknowledged to `pub` (PUBACK, or PUBCOMP for QoS 2) reached both
  subscribers: QoS 1 at least once, QoS 2 exactly once (and no QoS 2 message twice,
  acknowledged or not);
- a new subscriber to `crash/state` gets the last retained message.

Prints what it saw and exits non-zero on any loss. The seed is printed, so that a failing
run can be replayed (the broker's own timing still varies).
"""

import argparse
import collections
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


def is_acked(info):
    """Whether paho had the message's PUBACK (QoS 1) or PUBCOMP (QoS 2). Not
    `is_published()`, which raises for a message handed over while disconnected, although
    paho keeps it and sends it after the reconnect."""
    with info._condition:
        return info._published


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    def __init__(self, binary, port, directory, log):
        self.cmd = [binary, "--bind", f"127.0.0.1:{port}", "--persist", directory]
        self.port = port
        self.log = log
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    sys.exit(f"the broker exited ({self.proc.returncode}); see its log")
                if time.time() > deadline:
                    sys.exit("the broker did not listen within 10 s")
                time.sleep(0.02)

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Client(mqtt.Client):
    """paho-mqtt's client, with one fix to its QoS 2 resume.

    paho-mqtt 2.2 resets its outgoing messages at every reconnect attempt
    (`_messages_reconnect_reset_out`): a QoS 2 message awaiting PUBCOMP becomes
    `resend_pubrel`, and at the next attempt, if the first failed (the broker still down),
    `resend_pubrel` falls into its "else" branch and becomes a new PUBLISH with DUP 0. The
    broker, having released that identifier, rightly takes it for a new message and
    delivers it again: [MQTT-4.3.3-6] forbids the sender to resend a PUBLISH after its
    PUBREL. Seen in this test as QoS 2 messages delivered twice to both subscribers, each
    right after a kill, with paho's log showing PUBLISH, PUBREC, PUBREL, then the PUBLISH
    again (d0). Keeping such a message a PUBREL across attempts fixes it.
    """

    def _messages_reconnect_reset_out(self):
        with self._out_message_mutex:
            for m in self._out_messages.values():
                if m.qos == 2 and m.state == mqtt.mqtt_ms_resend_pubrel:
                    m.state = mqtt.mqtt_ms_wait_for_pubcomp
        super()._messages_reconnect_reset_out()


def client(client_id, version, port, expiry=None):
    c = Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=version,
        clean_session=False if version == mqtt.MQTTv311 else None,
    )
    c.reconnect_delay_set(min_delay=0.05, max_delay=0.5)
    c.max_inflight_messages_set(20)
    kwargs = {}
    if version == mqtt.MQTTv5:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = expiry
        kwargs = {"clean_start": False, "properties": props}
    c.connect_async("127.0.0.1", port, keepalive=30, **kwargs)
    return c


class Subscriber:
    def __init__(self, name, version, port):
        self.name = name
        self.counts = collections.Counter()
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.c = client(name, version, port, expiry=3600)
        self.c.on_message = self.on_message
        self.c.on_subscribe = lambda *a: self.subscribed.set()
        self.first = True
        self.c.on_connect = self.on_connect

    def on_connect(self, c, userdata, flags, rc, props=None):
        # Subscribes once: after each restart the stored subscription must still be there.
        if self.first and not rc.is_failure:
            self.first = False
            c.subscribe("crash/#", qos=2)

    def on_message(self, c, userdata, msg):
        if msg.topic.startswith("crash/q"):
            with self.lock:
                self.counts[msg.payload.decode()] += 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("broker")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--kills", type=int, default=3)
    ap.add_argument("--rate", type=float, default=400.0)
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    rng = random.Random(seed)
    print(f"seed {seed}, {args.kills} kills")

    directory = tempfile.mkdtemp(prefix="mqtt-crash-")
    log = tempfile.NamedTemporaryFile("w+", prefix="mqtt-crash-", suffix=".log", delete=False)
    port = free_port()
    broker = Broker(os.path.abspath(args.broker), port, directory, log)
    broker.start()
    subs = [Subscriber("sub5", mqtt.MQTTv5, port), Subscriber("sub3", mqtt.MQTTv311, port)]
    for s in subs:
        s.c.loop_start()
    for s in subs:
        if not s.subscribed.wait(10):
            sys.exit(f"{s.name} did not subscribe")

    pub = client("pub", mqtt.MQTTv5, port, expiry=0xFFFFFFFF)
    pub.loop_start()
    sent = []  # (payload, qos, MQTTMessageInfo)
    retained = []  # (value, MQTTMessageInfo)
    stop = threading.Event()

    def publish():
        n = 0
        while not stop.is_set():
            qos = 1 + n % 2
            payload = f"m{n}"
            info = pub.publish(f"crash/q{qos}/{n % 7}", payload, qos=qos)
            sent.append((payload, qos, info))
            n += 1
            time.sleep(1 / args.rate)

    publisher = threading.Thread(target=publish)
    publisher.start()
    started = time.time()
    try:
        for k in range(args.kills):
            time.sleep(rng.uniform(0.5, 3.0))
            value = f"state{k}"
            retained.append((value, pub.publish("crash/state", value, qos=1, retain=True)))
            time.sleep(rng.uniform(0.0, 0.2))
            broker.kill()
            print(f"  kill {k + 1} at {time.time() - started:.1f} s, {len(sent)} published so far")
            time.sleep(rng.uniform(0.0, 0.5))
            broker.start()
        time.sleep(1.0)
        stop.set()
        publisher.join()

        # Settle: every acknowledged message delivered, or 30 s.
        deadline = time.time() + 30
        while time.time() < deadline:
            acked = [(p, q) for p, q, i in sent if is_acked(i)]
            if len(acked) == len(sent) and all(
                all(s.counts[p] >= 1 for p, _ in acked) for s in subs
            ):
                break
            time.sleep(0.25)

        acked = [(p, q) for p, q, i in sent if is_acked(i)]
        problems = []
        if broker.proc.poll() is not None:
            problems.append(f"the broker exited by itself ({broker.proc.returncode})")
        print(f"published {len(sent)}, acknowledged {len(acked)}")
        for s in subs:
            with s.lock:
                counts = dict(s.counts)
            missing = [p for p, _ in acked if counts.get(p, 0) == 0]
            twice = [p for p, q in ((p, q) for p, q, _ in sent) if q == 2 and counts.get(p, 0) > 1]
            dups = sum(c - 1 for c in counts.values() if c > 1)
            print(f"  {s.name}: received {len(counts)} distinct, {dups} QoS 1 duplicates, "
                  f"{len(missing)} acknowledged missing, {len(twice)} QoS 2 twice")
            if missing:
                problems.append(f"{s.name} is missing {len(missing)} acknowledged: {missing[:10]}")
            if twice:
                problems.append(f"{s.name} got QoS 2 messages twice: {twice[:10]}")

        # The last retained value survives.
        got = []
        ready = threading.Event()
        check = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="check", protocol=mqtt.MQTTv5)
        check.on_message = lambda c, u, m: (got.append(m.payload.decode()), ready.set())
        check.on_connect = lambda c, *a: c.subscribe("crash/state", qos=1)
        try:
            check.connect("127.0.0.1", port)
            check.loop_start()
            ready.wait(5)
            check.loop_stop()
        except OSError as e:
            problems.append(f"a new client could not connect: {e}")
        last = [v for v, i in retained if is_acked(i)]
        print(f"  retained: {got[:1]} (last acknowledged {last[-1:]})")
        if last and got[:1] != last[-1:]:
            problems.append(f"retained crash/state is {got[:1]}, expected {last[-1:]}")
    finally:
        stop.set()
        for c in [pub] + [s.c for s in subs]:
            c.loop_stop()
        broker.stop()

    if problems:
        log.seek(0)
        print("\n".join(log.read().splitlines()[-40:]))
        print(f"FAIL (seed {seed}; broker log {log.name}; store {directory})")
        for p in problems:
            print("  " + p)
        sys.exit(1)
    print(f"PASS: nothing acknowledged was lost ({time.time() - started:.0f} s)")
    os.unlink(log.name)
    subprocess.run(["rm", "-rf", directory])


if __name__ == "__main__":
    main()
