"""paho-mqtt against an embedded broker (tests/embed.rs runs this).

usage: paho_peer.py TCP_PORT TLS_PORT WS_PORT WSS_PORT CA_FILE

A subscriber over WebSocket takes `embed/#`; then one publisher per transport (TCP, TLS,
WebSocket over TLS) publishes at QoS 1 to `embed/paho/<transport>`, and a client with the
wrong password is refused. Prints one line per outcome, which the test reads:
  refused <reason>          the refused login's reason
  published <transport>     a PUBACK came for that transport's message
  received <topic> <payload>
  (and `received` lines for what the Rust clients publish while it listens)
It exits after WAIT seconds with nothing new, or at once on any failure (non-zero).
"""
import sys
import threading
import time

import paho.mqtt.client as mqtt

tcp, tls, ws, wss = (int(p) for p in sys.argv[1:5])
ca = sys.argv[5]
HOST = "127.0.0.1"
WAIT = 3.0


OUT = threading.Lock()


def say(line):
    # paho's network threads and this one print: one whole line at a time.
    with OUT:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def client(name, transport="tcp", secure=False, password="pw"):
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=name,
                    protocol=mqtt.MQTTv5, transport=transport)
    c.username_pw_set("tester", password)
    if transport == "websockets":
        c.ws_set_options(path="/mqtt")
    if secure:
        c.tls_set(ca_certs=ca)
        c.tls_insecure_set(False)
    return c


def connect(c, port):
    done = threading.Event()
    result = {}

    def on_connect(_c, _u, _f, rc, _p):
        result["rc"] = rc
        done.set()

    c.on_connect = on_connect
    c.connect(HOST, port, keepalive=10)
    c.loop_start()
    if not done.wait(10):
        say("error: no CONNACK")
        sys.exit(1)
    return result["rc"]


last = [time.monotonic()]

sub = client("paho-sub", transport="websockets")
subscribed = threading.Event()
sub.on_subscribe = lambda *_: subscribed.set()


def on_message(_c, _u, m):
    last[0] = time.monotonic()
    say(f"received {m.topic} {m.payload.decode()}")


sub.on_message = on_message
rc = connect(sub, ws)
if rc.is_failure:
    say(f"error: subscriber refused: {rc}")
    sys.exit(1)
sub.subscribe("embed/#", qos=1)
if not subscribed.wait(10):
    say("error: no SUBACK")
    sys.exit(1)
say("subscribed")

refused = client("paho-wrong", password="wrong")
say(f"refused {connect(refused, tcp)}")
refused.loop_stop()

for name, port, transport, secure in [
    ("tcp", tcp, "tcp", False),
    ("tls", tls, "tcp", True),
    ("wss", wss, "websockets", True),
]:
    c = client(f"paho-{name}", transport=transport, secure=secure)
    rc = connect(c, port)
    if rc.is_failure:
        say(f"error: {name} refused: {rc}")
        sys.exit(1)
    info = c.publish(f"embed/paho/{name}", f"from paho over {name}", qos=1)
    info.wait_for_publish(10)
    if not info.is_published():
        say(f"error: no PUBACK over {name}")
        sys.exit(1)
    say(f"published {name}")
    c.disconnect()
    c.loop_stop()

while time.monotonic() - last[0] < WAIT:
    time.sleep(0.1)
sub.disconnect()
sub.loop_stop()
