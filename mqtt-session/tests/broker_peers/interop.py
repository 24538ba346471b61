#!/usr/bin/env python3
"""Runs the Eclipse Paho interoperability test suites against the broker program.

    cargo build -p mqtt-session --features cli --bin mqtt-broker
    python3 mqtt-session/tests/broker_peers/interop.py target/debug/mqtt-broker [--persist]

With `--persist`, every broker runs with `--persist` in a fresh temporary directory: the
suites then go through the store (every durable session, will and retained message is
written before it is acknowledged).

The suites are vendored in `paho_interop/` from eclipse/paho.mqtt.testing
(`interoperability/`, commit 9d7bb80bb8b9d9cfc0b52f8cb4c1916401281103; EPL-2.0 OR
BSD-3-Clause, see paho_interop/NOTICE): `client_test5.py` (MQTT 5.0) and `client_test.py`
(MQTT 3.1.1), with the suite's own client and packet codec. Only the files they import are
kept; `mqtt/brokers/`, the suite's reference broker, is an empty package here. One change,
marked in the file: in `test_subscribe_options` and `test_request_response` the original
waits for the first client's SUBACK where it means the second's, then publishes on the
first connection while the second's SUBSCRIBE may still be on its way; a broker that
reads its connections in parallel answers the PUBLISH with 0x10 No matching subscribers
about half the time (seen on a debug build: PUBACK 0x10 arrives, then the SUBACK). The
change waits for the second client's SUBACK, as the test's other steps do.

- MQTT 5.0: against a broker configured as the suite's reference broker is (Receive
  Maximum 20, a maximum keep-alive of 60 s, topic aliases towards clients), every test.
  `test_subscribe_failure` runs against a broker whose ACL denies its filter; it expects
  the SUBACK to refuse with 0x80, and the suite's SUBACK decoder rejects any other
  failure code, although MQTT 5.0 gives 0x87 Not authorized for this case (mosquitto
  sends 0x87 too). That one test is expected to fail for exactly that reason: if it fails
  otherwise, this script fails.
- MQTT 3.1.1: against a broker with defaults, every test but `test_subscribe_failure`,
  which runs against the broker with the ACL.

A few of the suite's tests race with themselves (see `main`): one that fails in the run of
the whole suite runs once more alone, and only a second failure fails this script; both
are reported. Each broker starts on a free 127.0.0.1 port and is killed at the end; every
suite run is bounded in time. Exits non-zero if anything unexpected happened.
"""
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SUITE = os.path.join(HERE, "paho_interop")
# The only reason test_subscribe_failure may fail under MQTT 5.0 (see above).
KNOWN_V5_SUBACK = "[MQTT5-3.9.3-2] return code in QoS must be 0, 1, 2 or 0x80"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PERSIST = False


class Broker:
    def __init__(self, binary, *args):
        self.port = free_port()
        cmd = [binary, "--bind", f"127.0.0.1:{self.port}", *args]
        self.store = None
        if PERSIST:
            self.store = tempfile.TemporaryDirectory(prefix="mqtt-interop-")
            cmd += ["--persist", self.store.name]
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.time() > deadline or self.proc.poll() is not None:
                    sys.exit(f"the broker did not listen: {' '.join(cmd)}")
                time.sleep(0.05)

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        if self.store:
            self.store.cleanup()


def tests_of(script):
    with open(os.path.join(SUITE, script)) as f:
        return re.findall(r"^    def (test\w+)\(self\)", f.read(), re.M)


def run(script, port, tests, timeout):
    """Runs `tests` of `script` against `port`; returns (tests run, failed, output)."""
    if script == "client_test5.py":
        cmd = [sys.executable, script, "-p", str(port), *[f"Test.{t}" for t in tests]]
    else:
        # client_test.py hands its own options on to unittest, which refuses them: run it
        # with unittest's arguments given separately.
        wrapper = (
            "import runpy, sys, unittest\n"
            "sys.path.insert(0, '.')\n"
            "tests = sys.argv[2:]\n"
            "main = unittest.main\n"
            "unittest.main = lambda *a, **k: main(*a, argv=['client_test.py'] + tests, **k)\n"
            "sys.argv = ['client_test.py', '-p', sys.argv[1]]\n"
            "runpy.run_path('client_test.py', run_name='__main__')\n"
        )
        cmd = [sys.executable, "-c", wrapper, str(port), *[f"Test.{t}" for t in tests]]
    try:
        out = subprocess.run(cmd, cwd=SUITE, capture_output=True, text=True, timeout=timeout)
        text = out.stdout + out.stderr
    except subprocess.TimeoutExpired as e:
        text = (e.stdout or b"").decode() + (e.stderr or b"").decode()
        return 0, len(tests), text + f"\n(timed out after {timeout} s)"
    ran = re.search(r"^Ran (\d+) tests?", text, re.M)
    ran = int(ran.group(1)) if ran else 0
    failed = re.search(r"^FAILED \((.*)\)", text, re.M)
    n_failed = sum(int(n) for n in re.findall(r"=(\d+)", failed.group(1))) if failed else 0
    if ran != len(tests) and not failed:
        n_failed = len(tests) - ran
    return ran, n_failed, text


def main():
    global PERSIST
    args = sys.argv[1:]
    PERSIST = "--persist" in args
    args = [a for a in args if a != "--persist"]
    if len(args) != 1:
        sys.exit(__doc__)
    binary = args[0]
    acl = tempfile.NamedTemporaryFile("w", suffix=".acl", delete=False)
    acl.write("topic readwrite #\ntopic deny test/nosubscribe\n")
    acl.close()
    problems = []
    started = time.time()

    v5 = [t for t in tests_of("client_test5.py") if t != "test_subscribe_failure"]
    v3 = [t for t in tests_of("client_test.py") if t != "test_subscribe_failure"]
    reference = ("--receive-maximum", "20", "--max-keepalive", "60", "--outbound-topic-aliases")
    plans = [
        ("MQTT 5.0", "client_test5.py", reference, v5, 400),
        ("MQTT 3.1.1", "client_test.py", (), v3, 200),
    ]
    for name, script, args, tests, timeout in plans:
        broker = Broker(binary, *args)
        try:
            ran, failed, out = run(script, broker.port, tests, timeout)
            ok = ran == len(tests) and failed == 0
            print(f"{'PASS' if ok else 'FAIL'} {name} {script}: {ran - failed} of {len(tests)} passed")
            if not ok:
                # Some tests race with themselves (a PUBLISH sent on one connection right
                # after a SUBSCRIBE on another whose SUBACK is not awaited; a will expected
                # within a second of a boundary). A test that failed in the run of the
                # whole suite is run once more, alone: it passes then only if the failure
                # was such a race, and it is reported either way.
                names = re.findall(r"^(?:FAIL|ERROR): (test\w+) ", out, re.M)
                for t in sorted(set(names)):
                    again, again_failed, again_out = run(script, broker.port, [t], 120)
                    if again == 1 and again_failed == 0:
                        print(f"  {t}: failed in the whole run, passed alone (timing)")
                    else:
                        print(f"  {t}: FAILED again alone")
                        problems.append(f"{name} {t}\n{again_out[-4000:]}")
                if not names:
                    problems.append(f"{name}: {failed} failed\n{out[-4000:]}")
        finally:
            broker.stop()

    broker = Broker(binary, "--acl", acl.name, "--allow-anonymous", "true")
    try:
        ran, failed, out = run("client_test.py", broker.port, ["test_subscribe_failure"], 60)
        ok = ran == 1 and failed == 0
        print(f"{'PASS' if ok else 'FAIL'} MQTT 3.1.1 client_test.py: test_subscribe_failure")
        if not ok:
            problems.append(f"MQTT 3.1.1 test_subscribe_failure\n{out[-4000:]}")
        ran, failed, out = run("client_test5.py", broker.port, ["test_subscribe_failure"], 60)
        if ran == 1 and failed == 0:
            print("PASS MQTT 5.0 client_test5.py: test_subscribe_failure")
        elif KNOWN_V5_SUBACK in out:
            print("EXPECTED FAILURE MQTT 5.0 client_test5.py: test_subscribe_failure "
                  "(the suite's SUBACK decoder rejects 0x87 Not authorized)")
        else:
            print("FAIL MQTT 5.0 client_test5.py: test_subscribe_failure, for another reason")
            problems.append(f"MQTT 5.0 test_subscribe_failure\n{out[-4000:]}")
    finally:
        broker.stop()
        os.unlink(acl.name)

    print(f"{len(problems)} failed ({time.time() - started:.0f} s)")
    for p in problems:
        print("\n" + p)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
