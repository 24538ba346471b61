#!/usr/bin/env python3
"""Real peers against the broker program: mosquitto_pub / mosquitto_sub (MQTT 3.1.1 and 5.0)
and paho-mqtt, over TCP, TLS and WebSocket.

    python3 mqtt-session/tests/broker_peers/run.py target/debug/mqtt-broker

Each check starts from a broker on free 127.0.0.1 ports (port 0, read back from its log),
is bounded in time, and prints PASS or FAIL; the exit status is the number of failures.
"""

import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

BROKER = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/debug/mqtt-broker")
TIMEOUT = 5.0
V311, V5 = mqtt.MQTTv311, mqtt.MQTTv5


class Broker:
    """The broker program as a child process, with its log collected."""

    def __init__(self, *args):
        self.proc = subprocess.Popen(
            [BROKER, "--bind", "127.0.0.1:0", "--log-level", "debug", *args],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        self.lines = []
        self.ports = {}
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        if not self.ready.wait(TIMEOUT):
            self.stop()
            raise RuntimeError("broker did not start:\n" + "\n".join(self.lines))

    def _read(self):
        want = 1 + sum(a in ("--tls", "--ws") for a in self.proc.args)
        for line in self.proc.stderr:
            self.lines.append(line.rstrip())
            m = re.search(r"listening on 127\.0\.0\.1:(\d+) \((.*)\)", line)
            if m:
                self.ports[m.group(2)] = int(m.group(1))
                if len(self.ports) == want:
                    self.ready.set()

    @property
    def port(self):
        return self.ports["mqtt"]

    def log(self):
        return "\n".join(self.lines)

    def stop(self, sig=signal.SIGINT):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                return self.proc.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                raise AssertionError("broker did not stop on " + sig.name)
        return self.proc.returncode


class Client:
    """A paho client whose callbacks land in queues."""

    def __init__(self, port, client_id="", version=V5, clean=True, expiry=None, transport="tcp",
                 tls_ca=None, will=None, user=None):
        kwargs = {"clean_session": clean} if version != V5 else {}
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=version,
                             transport=transport, **kwargs)
        self.messages = queue.Queue()
        self.connack = queue.Queue()
        self.disconnects = queue.Queue()
        self.subacks = queue.Queue()
        self.c.on_connect = lambda c, u, f, rc, p: self.connack.put((f.session_present, rc))
        self.c.on_message = lambda c, u, m: self.messages.put(m)
        self.c.on_disconnect = lambda c, u, f, rc, p: self.disconnects.put(rc)
        self.c.on_subscribe = lambda c, u, mid, rcs, p: self.subacks.put(rcs)
        if tls_ca:
            self.c.tls_set(ca_certs=tls_ca)
        if will:
            self.c.will_set(*will)
        if user:
            self.c.username_pw_set(*user)
        props = None
        if version == V5 and expiry is not None:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = expiry
        start = {"clean_start": clean} if version == V5 else {}
        self.c.connect("127.0.0.1", port, keepalive=30, properties=props, **start)
        self.c.loop_start()

    def connected(self):
        present, rc = self.connack.get(timeout=TIMEOUT)
        assert not rc.is_failure, f"CONNACK {rc}"
        return present

    def subscribe(self, topic, qos=1, **options):
        if options:
            self.c.subscribe(topic, options=SubscribeOptions(qos=qos, **options))
        else:
            self.c.subscribe(topic, qos)
        rcs = self.subacks.get(timeout=TIMEOUT)
        assert not any(rc.is_failure for rc in rcs), f"SUBACK {rcs}"

    def publish(self, topic, payload, qos=0, retain=False):
        info = self.c.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(TIMEOUT)
        assert info.is_published(), f"publish to {topic} not acknowledged"

    def received(self, n, timeout=TIMEOUT):
        out = []
        deadline = time.time() + timeout
        while len(out) < n:
            out.append(self.messages.get(timeout=max(0.01, deadline - time.time())))
        return out

    def nothing_more(self, wait=0.3):
        time.sleep(wait)
        assert self.messages.empty(), f"unexpected message {self.messages.get().topic}"

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()

    def drop(self):
        """The network fails: the socket closes without DISCONNECT."""
        self.c.loop_stop()
        self.c.socket().close()


def sub_proc(port, version, *args):
    return subprocess.Popen(
        ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-V", version, *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def pub(port, version, *args):
    subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-V", version, *args],
                   check=True, timeout=TIMEOUT, capture_output=True)


def wait_subscribed(broker, n):
    """Waits until the broker logged `n` connected clients."""
    deadline = time.time() + TIMEOUT
    while broker.log().count(" connected from ") < n:
        assert time.time() < deadline, "client did not connect"
        time.sleep(0.02)
    time.sleep(0.2)  # the SUBSCRIBE follows the CONNACK


# ----- checks ----------------------------------------------------------------------------

def mosquitto_qos_levels(b):
    for version in ("mqttv311", "mqttv5"):
        for qos in ("0", "1", "2"):
            before = b.log().count(" connected from ")
            s = sub_proc(b.port, version, "-t", f"m/{version}/{qos}", "-q", qos, "-C", "1",
                         "-W", "5", "-F", "%t %q %p")
            wait_subscribed(b, before + 1)
            pub(b.port, version, "-t", f"m/{version}/{qos}", "-q", qos, "-m", f"hello {qos}")
            out, err = s.communicate(timeout=TIMEOUT)
            assert out.strip() == f"m/{version}/{qos} {qos} hello {qos}", (out, err)


def mosquitto_retained_and_wildcards(b):
    pub(b.port, "mqttv311", "-t", "r/a/x", "-m", "retained a", "-r", "-q", "1")
    pub(b.port, "mqttv5", "-t", "r/b/x", "-m", "retained b", "-r", "-q", "1")
    pub(b.port, "mqttv5", "-t", "r/c", "-m", "not retained")
    s = sub_proc(b.port, "mqttv5", "-t", "r/+/x", "-C", "2", "-W", "5", "-F", "%r %t %p")
    out, err = s.communicate(timeout=TIMEOUT)
    assert sorted(out.strip().splitlines()) == ["1 r/a/x retained a", "1 r/b/x retained b"], out
    # An empty retained payload deletes it.
    pub(b.port, "mqttv311", "-t", "r/a/x", "-n", "-r")
    s = sub_proc(b.port, "mqttv311", "-t", "r/#", "-C", "1", "-W", "5", "-F", "%t %p")
    out, _ = s.communicate(timeout=TIMEOUT)
    assert out.strip() == "r/b/x retained b", out


def mosquitto_qos0_burst(b):
    """Flow control: a burst of 20,000 QoS 0 messages of 1 KiB (20 MiB, more than the
    kernel's socket buffers hold) from mosquitto_pub -l reaches a mosquitto_sub that stops
    reading for two seconds and then keeps reading: every one, in order, under both
    versions. The broker slows the publisher down instead of dropping the subscriber."""
    n = 20_000
    lines = "".join(f"{i:05} {'x' * 1018}\n" for i in range(n))
    for version in ("mqttv311", "mqttv5"):
        before = b.log().count(" connected from ")
        s = sub_proc(b.port, version, "-t", f"burst/{version}", "-C", str(n), "-W", "90")
        wait_subscribed(b, before + 1)
        publisher = subprocess.Popen(
            ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(b.port), "-V", version,
             "-t", f"burst/{version}", "-l"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        feeder = threading.Thread(target=lambda: publisher.communicate(lines, timeout=90))
        feeder.start()
        time.sleep(2)  # the subscriber's stdout pipe fills: it stops reading its socket
        out, err = s.communicate(timeout=90)
        feeder.join(90)
        got = [line[:5] for line in out.splitlines()]
        assert got == [f"{i:05}" for i in range(n)], (version, len(got), err)
        assert publisher.returncode == 0, publisher.returncode


def paho_5000_retained(b):
    """Flow control: one subscription matching 5,000 retained messages of 4 KiB receives
    them all, though its client stops reading for two seconds."""
    n = 5000
    p = Client(b.port, "retainer", version=V311)
    p.connected()
    infos = [p.c.publish(f"r5k/{i}", b"x" * 4096, qos=1, retain=True) for i in range(n)]
    for info in infos:
        info.wait_for_publish(30)
        assert info.is_published()
    p.close()
    s = sub_proc(b.port, "mqttv5", "-t", "r5k/#", "-C", str(n), "-W", "60", "-F", "%r %t")
    time.sleep(2)
    out, err = s.communicate(timeout=60)
    got = out.splitlines()
    assert len(got) == n and all(line.startswith("1 r5k/") for line in got), (len(got), err)
    assert len(set(got)) == n, "a retained message came twice"


def mosquitto_will(b):
    watcher = Client(b.port, "will-watch")
    watcher.connected()
    watcher.subscribe("wills/#", 1)
    before = b.log().count(" connected from ")
    victim = sub_proc(b.port, "mqttv5", "-i", "victim", "-t", "x", "--will-topic", "wills/victim",
                      "--will-payload", "gone", "--will-qos", "1")
    wait_subscribed(b, before + 1)
    victim.kill()  # no DISCONNECT: the will goes out
    m = watcher.received(1)[0]
    assert (m.topic, m.payload, m.qos) == ("wills/victim", b"gone", 1), m
    # A normal disconnect deletes the will.
    polite = Client(b.port, "polite", version=V311, will=("wills/polite", b"never", 1))
    polite.connected()
    polite.close()
    watcher.nothing_more()
    watcher.close()


def paho_qos_both_versions(b):
    for version in (V311, V5):
        s = Client(b.port, f"s{version}", version=version)
        s.connected()
        s.subscribe("p/#", 2)
        p = Client(b.port, f"p{version}", version=version)
        p.connected()
        for qos in (0, 1, 2):
            p.publish(f"p/{qos}", f"q{qos}", qos=qos)
        got = sorted((m.topic, m.payload, m.qos) for m in s.received(3))
        assert got == [("p/0", b"q0", 0), ("p/1", b"q1", 1), ("p/2", b"q2", 2)], got
        s.nothing_more()
        s.close()
        p.close()


def paho_session_resume(b):
    for version in (V311, V5):
        cid = f"resume{version}"
        s = Client(b.port, cid, version=version, clean=True)  # no session left behind
        s.connected()
        s.close()
        s = Client(b.port, cid, version=version, clean=False, expiry=300)
        assert s.connected() == 0
        s.subscribe("resume/t", 2)
        s.close()
        p = Client(b.port, version=V5)
        p.connected()
        for i in range(3):
            p.publish("resume/t", f"m{i}", qos=1)
        p.publish("resume/t", "exactly once", qos=2)
        p.close()
        s = Client(b.port, cid, version=version, clean=False, expiry=300)
        assert s.connected() == 1, "session present"
        got = [m.payload for m in s.received(4)]
        # paho hands a QoS 2 message over when its PUBREL arrives, so only the QoS 1 ones
        # are in publishing order here.
        assert [g for g in got if g != b"exactly once"] == [b"m0", b"m1", b"m2"], got
        assert got.count(b"exactly once") == 1, got
        s.nothing_more()
        s.close()


def paho_wildcards_and_dollar_topics(b):
    s = Client(b.port, "wild")
    s.connected()
    s.subscribe("+/temp", 0)
    s.subscribe("#", 0, retainHandling=2)  # not the retained messages of earlier checks
    p = Client(b.port, "wild-pub")
    p.connected()
    p.publish("$SYS/x", "hidden", qos=1)
    p.publish("room/temp", "21", qos=1)
    got = [(m.topic, m.payload) for m in s.received(1)]
    assert got == [("room/temp", b"21")], got  # once, though two filters match
    s.nothing_more()
    s.close()
    p.close()


def paho_shared_subscriptions(b):
    workers = [Client(b.port, f"worker{i}") for i in range(2)]
    for w in workers:
        w.connected()
        w.subscribe("$share/pool/jobs/+", 1)
    p = Client(b.port, "boss")
    p.connected()
    for i in range(10):
        p.publish(f"jobs/{i}", f"job {i}", qos=1)
    time.sleep(0.5)
    counts = [w.messages.qsize() for w in workers]
    assert sum(counts) == 10 and min(counts) > 0, counts
    for w in workers:
        w.close()
    p.close()


def paho_no_local_and_retain_as_published(b):
    c = Client(b.port, "nl")
    c.connected()
    c.subscribe("nl/t", 1, noLocal=True, retainAsPublished=True)
    c.publish("nl/t", "own", qos=1)
    c.nothing_more()
    o = Client(b.port, "nl-other")
    o.connected()
    o.publish("nl/t", "other", qos=1, retain=True)
    m = c.received(1)[0]
    assert (m.payload, m.retain) == (b"other", True), m
    c.close()
    o.close()


def tls_and_websocket(cert_dir):
    cert, key = os.path.join(cert_dir, "cert.pem"), os.path.join(cert_dir, "key.pem")
    b = Broker("--tls", "127.0.0.1:0", "--cert", cert, "--key", key, "--ws", "127.0.0.1:0")
    try:
        s = Client(b.ports["mqtt over WebSocket"], "ws-sub", transport="websockets")
        s.connected()
        s.subscribe("secure/#", 1)
        p = Client(b.ports["mqtt over TLS"], "tls-pub", tls_ca=cert)
        p.connected()
        p.publish("secure/a", "over tls", qos=1)
        pub(b.ports["mqtt over TLS"], "mqttv311", "--cafile", cert, "-t", "secure/b",
            "-m", "mosquitto over tls", "-q", "1")
        got = sorted(m.payload for m in s.received(2))
        assert got == [b"mosquitto over tls", b"over tls"], got
        s.close()
        p.close()
    finally:
        assert b.stop() == 0


def users_file(tmp):
    path = os.path.join(tmp, "users")
    with open(path, "w") as f:
        f.write("# test users\nalice:wonderland\n")
    b = Broker("--users", path)
    try:
        ok = Client(b.port, "alice", user=("alice", "wonderland"))
        ok.connected()
        ok.close()
        # paho reports 3.1.1 return codes 4 and 5 as 0x86 and 0x87 too.
        for version, user, want in [(V5, ("alice", "wrong"), 0x86), (V311, ("bob", "x"), 0x86),
                                    (V5, None, 0x87), (V311, None, 0x87)]:
            c = Client(b.port, "x", version=version, user=user)
            _, rc = c.connack.get(timeout=TIMEOUT)
            assert rc.value == want, (version, user, rc)
            c.c.loop_stop()
    finally:
        b.stop()


def max_packet_size():
    b = Broker("--max-packet-size", "128")
    try:
        c = Client(b.port, "big", version=V311)
        c.connected()
        c.c.publish("t", b"x" * 200, qos=1)
        c.disconnects.get(timeout=TIMEOUT)  # closed: 3.1.1 cannot be told why
        c.c.loop_stop()
        assert "packet too large" in b.log(), b.log()
        ok = Client(b.port, "small", version=V5)
        ok.connected()
        ok.subscribe("t", 1)
        ok.publish("t", "fits", qos=1)
        assert ok.received(1)[0].payload == b"fits"
        ok.close()
    finally:
        b.stop()


def graceful_shutdown():
    b = Broker()
    c = Client(b.port, "bye")
    c.connected()
    assert b.stop(signal.SIGINT) == 0
    rc = c.disconnects.get(timeout=TIMEOUT)
    assert rc.value == 0x8B, rc  # Server shutting down
    c.c.loop_stop()


def make_cert(tmp):
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", os.path.join(tmp, "key.pem"), "-out", os.path.join(tmp, "cert.pem")],
        check=True, capture_output=True, timeout=30)


def main():
    failures = 0
    shared_checks = [mosquitto_qos_levels, mosquitto_retained_and_wildcards, mosquitto_will,
                     mosquitto_qos0_burst, paho_5000_retained,
                     paho_qos_both_versions, paho_session_resume,
                     paho_wildcards_and_dollar_topics, paho_shared_subscriptions,
                     paho_no_local_and_retain_as_published]
    b = Broker()
    with tempfile.TemporaryDirectory() as tmp:
        make_cert(tmp)
        checks = [(f.__name__, lambda f=f: f(b)) for f in shared_checks]
        checks += [("tls_and_websocket", lambda: tls_and_websocket(tmp)),
                   ("users_file", lambda: users_file(tmp)),
                   ("max_packet_size", max_packet_size),
                   ("graceful_shutdown", graceful_shutdown)]
        for name, check in checks:
            start = time.time()
            try:
                check()
                print(f"PASS {name} ({time.time() - start:.1f}s)")
            except Exception:
                failures += 1
                print(f"FAIL {name}\n{traceback.format_exc()}")
        code = b.stop()
        if code != 0:
            failures += 1
            print(f"FAIL broker exit status {code}")
        if failures:
            print("--- broker log ---\n" + b.log())
    print(f"{failures} failed")
    return failures


if __name__ == "__main__":
    sys.exit(main())
