#!/usr/bin/env python3
"""Runs the rumqttc load test (benches/load, binary `load`) against several brokers on
127.0.0.1 and prints a Markdown table of the medians.

    cargo build --release -p mqtt-session --features cli --bin mqtt-broker
    cargo build --release --manifest-path benches/load/Cargo.toml
    python3 benches/load/run.py \\
        --broker 'ours=target/release/mqtt-broker --bind 127.0.0.1:{port}' \\
        --broker 'mosquitto=mosquitto -p {port}'

Each broker command has `{port}`: a free port is chosen for it. For each run (`--runs`,
default 3), the brokers take turns in the order given (ours, mosquitto, ours, mosquitto...,
because a shared machine's speed drifts): each is started, waited for until it accepts a
TCP connection, given every scenario (`--scenario`, repeatable; default all) under each
protocol (`--protocol 3.1.1|5|both`, default 3.1.1), and then stopped. Arguments after `--`
go to every `load` run (`-- --nodelay all`, say). The `load` binary is found in
$CARGO_TARGET_DIR/release, else benches/load/target/release, unless `--load PATH`.

Each `load` line is printed as it comes, then the table: per scenario and protocol, each
broker's median deliveries per second and median percentage delivered, and the ratio of
the medians of `--ratio A/B` (repeatable; default ours/mosquitto when both are given).
Runs that did not deliver everything are listed under the table with how they ended.
Broker logs go to `--logs DIR` (default: a new temporary directory). Standard library
only; every run is bounded by `load --timeout` (default 120 s, `--timeout`).
"""

import argparse
import datetime
import math
import os
import re
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIOS = ["qos0-1to1", "qos1-1to1", "qos1-4to4"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_accepting(port, proc, seconds=10.0):
    """Whether the broker accepts a TCP connection on 127.0.0.1:port within `seconds`."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def parse_line(line):
    """The key=value pairs of a `load` result line, or None."""
    if not line.startswith("scenario="):
        return None
    return dict(kv.split("=", 1) for kv in line.split())


def default_load():
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(HERE, "target")
    return os.path.join(target, "release", "load")


def versions(brokers):
    """A line or two on what was measured: the rumqttc version from Cargo.lock, and
    mosquitto's version where a broker command runs mosquitto."""
    out = []
    try:
        lock = open(os.path.join(HERE, "Cargo.lock")).read()
        m = re.search(r'name = "rumqttc"\nversion = "([^"]+)"', lock)
        out.append(f"rumqttc {m.group(1) if m else '?'}")
    except OSError:
        out.append("rumqttc ?")
    for label, command in brokers:
        prog = shlex.split(command)[0]
        if os.path.basename(prog) == "mosquitto":
            r = subprocess.run([prog, "-h"], capture_output=True, text=True)
            first = (r.stdout or r.stderr).splitlines()[:1]
            out.append(f"{label}: {first[0] if first else '?'}")
    return out


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--broker", action="append", required=True, metavar="LABEL=COMMAND")
    ap.add_argument("--scenario", action="append", choices=SCENARIOS)
    ap.add_argument("--protocol", choices=["3.1.1", "5", "both"], default="3.1.1")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--timeout", type=int, default=120)
    ap.add_argument("--load", default=default_load())
    ap.add_argument("--ratio", action="append", metavar="A/B")
    ap.add_argument("--logs")
    ap.add_argument("load_args", nargs="*", help="after --: passed to every load run")
    a = ap.parse_args()

    brokers = []
    for b in a.broker:
        label, sep, command = b.partition("=")
        if not sep or "{port}" not in command:
            ap.error(f"--broker {b!r}: expected LABEL=COMMAND with {{port}} in COMMAND")
        brokers.append((label, command))
    labels = [label for label, _ in brokers]
    scenarios = a.scenario or SCENARIOS
    protocols = ["3.1.1", "5"] if a.protocol == "both" else [a.protocol]
    ratios = a.ratio or (["ours/mosquitto"] if {"ours", "mosquitto"} <= set(labels) else [])
    for r in ratios:
        if r.count("/") != 1 or not set(r.split("/")) <= set(labels):
            ap.error(f"--ratio {r}: expected A/B with two broker labels")
    if not os.access(a.load, os.X_OK):
        sys.exit(f"{a.load}: not built (cargo build --release --manifest-path "
                 f"benches/load/Cargo.toml), or give --load PATH")
    logs = a.logs or tempfile.mkdtemp(prefix="mqtt-load-")
    os.makedirs(logs, exist_ok=True)

    started = time.monotonic()
    print(f"# {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
          f"{os.cpu_count()} cores, {a.runs} runs, {', '.join(versions(brokers))}")
    for label, command in brokers:
        print(f"# {label}: {command}")
    print(f"# broker logs: {logs}", flush=True)

    results = {}  # (label, scenario, protocol) -> [result dicts]
    for run in range(1, a.runs + 1):
        for label, command in brokers:
            port = free_port()
            argv = shlex.split(command.replace("{port}", str(port)))
            log = open(os.path.join(logs, f"{label}-run{run}.log"), "w")
            try:
                proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
            except OSError as e:
                sys.exit(f"{label}: {e} (mosquitto: apt-get install -y mosquitto)")
            try:
                if not wait_accepting(port, proc):
                    sys.exit(f"{label}: not accepting on 127.0.0.1:{port}; see {log.name}")
                for protocol in protocols:
                    for scenario in scenarios:
                        res = run_load(a, label, port, scenario, protocol, proc)
                        results.setdefault((label, scenario, protocol), []).append(res)
            finally:
                stop(proc)
                log.close()

    print()
    print(table(results, labels, scenarios, protocols, ratios))
    short = [(k, r) for k, rs in results.items() for r in rs if r["percent"] < 100.0
             or r["end"] != "complete"]
    if short:
        print()
        for (label, scenario, protocol), r in short:
            print(f"- {label} {scenario} {protocol}: {r['delivered']} of {r['expected']} "
                  f"({r['percent']:.2f}%), ended {r['end']}")
    print(f"\n# {time.monotonic() - started:.0f} s in all")


def run_load(a, label, port, scenario, protocol, proc):
    argv = [a.load, "--port", str(port), "--broker", label, "--scenario", scenario,
            "--timeout", str(a.timeout)]
    if protocol == "5":
        argv.append("--v5")
    argv += a.load_args
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=a.timeout + 60)
        out, err = r.stdout, r.stderr
    except subprocess.TimeoutExpired as e:
        out, err = (e.stdout or b"").decode(), "load did not stop by itself: killed"
    res = None
    for line in out.splitlines():
        res = parse_line(line) or res
    if res is None:
        res = {"scenario": scenario, "broker": label, "protocol": protocol, "delivered": "0",
               "expected": "0", "percent": "0", "rate": "0", "end": "failed"}
    for k in ("delivered", "expected"):
        res[k] = int(res[k])
    for k in ("percent", "rate"):
        res[k] = float(res[k])
    if proc.poll() is not None:
        res["end"] += f" (broker exited {proc.returncode})"
    print(out.strip() or f"{label} {scenario} {protocol}: no result", flush=True)
    for line in err.strip().splitlines()[:5]:
        print(f"  {label}: {line}", flush=True)
    return res


def table(results, labels, scenarios, protocols, ratios):
    head = ["scenario", "protocol"]
    for label in labels:
        head += [f"{label} msg/s", f"{label} %"]
    head += ratios
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * 2 + "---:|" * (len(head) - 2)]
    for protocol in protocols:
        for scenario in scenarios:
            rate, pct = {}, {}
            cells = [f"`{scenario}`", protocol]
            for label in labels:
                rs = results.get((label, scenario, protocol), [])
                if rs:
                    rate[label] = statistics.median(r["rate"] for r in rs)
                    pct[label] = statistics.median(r["percent"] for r in rs)
                    cells += [f"{rate[label]:,.0f}", f"{math.floor(pct[label] * 10) / 10:.1f}"]
                else:
                    cells += ["", ""]
            for r in ratios:
                x, y = r.split("/")
                ok = rate.get(x) and rate.get(y)
                cells.append(f"{rate[x] / rate[y]:.2f}" if ok else "")
            rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
