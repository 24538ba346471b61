//! The cases of the comparison with mosquitto's clients: mosquitto_pub(1)'s,
//! mosquitto_sub(1)'s and mosquitto_rr(1)'s EXAMPLES, then a case for each flag that
//! shapes what is printed or the exit status.

/// A case: the command line under test, and what goes on around it.
pub(crate) struct Case {
    /// What it checks, for the failure message.
    pub(crate) name: &'static str,
    /// `pub`, `sub` or `rr`, then mosquitto's flags. `{T}` becomes a topic prefix of this
    /// run's own; `{BIN}` a file of the 256 byte values; `{DEAD}` a port nobody listens on.
    /// `-h 127.0.0.1 -p PORT` go before them.
    pub(crate) line: &'static [&'static str],
    /// Bytes for the program's stdin.
    pub(crate) stdin: &'static [u8],
    /// mosquitto_pub command lines run before the program starts (retained messages).
    pub(crate) before: &'static [&'static [&'static str]],
    /// mosquitto_pub command lines run once the program has had time to subscribe.
    pub(crate) feed: &'static [&'static [&'static str]],
    /// A mosquitto_sub command line (flags after the address) watching what the program
    /// publishes, started before it (or after it, for retained messages).
    pub(crate) watch: Option<(&'static [&'static str], Watch)>,
    /// For `rr`: answer the first request on `{T}/req` with this payload on `{T}/resp`.
    pub(crate) respond: Option<&'static str>,
    /// The exit status both must give, where it does not depend on the broker.
    pub(crate) status: Option<i32>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Watch {
    Before,
    After,
}

const NONE: Case = Case {
    name: "",
    line: &[],
    stdin: b"",
    before: &[],
    feed: &[],
    watch: None,
    respond: None,
    status: Some(0),
};

/// A watcher of everything under `{T}/` for one message, printing retain, QoS, topic and
/// payload in hex.
const WATCH_ONE: &[&str] = &[
    "-t",
    "{T}/#",
    "-q",
    "2",
    "-F",
    "%r %q %t %x",
    "-W",
    "3",
    "-C",
    "1",
];

pub(crate) fn cases() -> Vec<Case> {
    vec![
        // mosquitto_pub(1) EXAMPLES.
        Case {
            name: "pub EXAMPLES: temperature at QoS 1",
            line: &[
                "pub",
                "-t",
                "{T}/sensors/temperature",
                "-m",
                "32",
                "-q",
                "1",
            ],
            watch: Some((WATCH_ONE, Watch::Before)),
            ..NONE
        },
        Case {
            name: "pub EXAMPLES: timestamp and temperature, QoS 0",
            line: &[
                "pub",
                "-t",
                "{T}/sensors/temperature",
                "-m",
                "1266193804 32",
            ],
            watch: Some((WATCH_ONE, Watch::Before)),
            ..NONE
        },
        Case {
            name: "pub EXAMPLES: -r, retained: a later subscriber gets it with retain 1",
            line: &[
                "pub",
                "-r",
                "-t",
                "{T}/switches/kitchen_lights/status",
                "-m",
                "on",
            ],
            watch: Some((
                &["-t", "{T}/#", "-F", "%r %t %p", "-C", "1", "-W", "3"],
                Watch::After,
            )),
            ..NONE
        },
        Case {
            name: "pub EXAMPLES: -f, a file of every byte value, untouched",
            line: &["pub", "-t", "{T}/my/topic", "-f", "{BIN}"],
            watch: Some((WATCH_ONE, Watch::Before)),
            ..NONE
        },
        Case {
            name: "pub EXAMPLES: -s, stdin as one message, bytes untouched",
            line: &["pub", "-t", "{T}/my/topic", "-s"],
            stdin: b"\x00\x01binary\xff\xfe\n\r\n",
            watch: Some((WATCH_ONE, Watch::Before)),
            ..NONE
        },
        Case {
            name: "pub EXAMPLES: -l, one message per line (empty line, last line unterminated)",
            line: &["pub", "-t", "{T}/sensors/cc128", "-l", "-q", "1"],
            stdin: b"first\n\nthird\r\nlast",
            watch: Some((
                &[
                    "-t",
                    "{T}/#",
                    "-q",
                    "2",
                    "-F",
                    "%r %q %t %x",
                    "-W",
                    "3",
                    "-C",
                    "4",
                ],
                Watch::Before,
            )),
            ..NONE
        },
        Case {
            name: "pub -n: a zero-length message",
            line: &["pub", "-n", "-t", "{T}/null"],
            watch: Some((WATCH_ONE, Watch::Before)),
            ..NONE
        },
        Case {
            name: "pub -q 2 -V mqttv5 -D: properties reach the subscriber",
            line: &[
                "pub",
                "-t",
                "{T}/props",
                "-m",
                "x",
                "-q",
                "2",
                "-V",
                "mqttv5",
                "-D",
                "publish",
                "content-type",
                "text/plain",
                "-D",
                "publish",
                "user-property",
                "k",
                "v",
                "-D",
                "publish",
                "response-topic",
                "{T}/back",
            ],
            watch: Some((
                &[
                    "-t",
                    "{T}/#",
                    "-V",
                    "5",
                    "-F",
                    "%t|%C|%P|%R|%p",
                    "-W",
                    "3",
                    "-C",
                    "1",
                ],
                Watch::Before,
            )),
            ..NONE
        },
        Case {
            name: "pub -d -i: libmosquitto's debug lines, QoS 1",
            line: &[
                "pub",
                "-d",
                "-i",
                "cli-test-pub-d",
                "-t",
                "{T}/d",
                "-m",
                "hi",
                "-q",
                "1",
            ],
            ..NONE
        },
        Case {
            name: "pub --repeat 3: the message three times",
            line: &[
                "pub",
                "-t",
                "{T}/again",
                "-m",
                "r",
                "--repeat",
                "3",
                "-q",
                "1",
            ],
            watch: Some((
                &[
                    "-t",
                    "{T}/#",
                    "-q",
                    "2",
                    "-F",
                    "%r %q %t %x",
                    "-W",
                    "3",
                    "-C",
                    "3",
                ],
                Watch::Before,
            )),
            ..NONE
        },
        Case {
            name: "pub refused login (3.1.1): exit status is the CONNACK return code",
            line: &[
                "pub", "-t", "{T}/x", "-m", "x", "-u", "alice", "-P", "wrong",
            ],
            status: None,
            ..NONE
        },
        Case {
            name: "pub refused login (5.0): exit status is the CONNACK reason code",
            line: &[
                "pub", "-t", "{T}/x", "-m", "x", "-u", "alice", "-P", "wrong", "-V", "5",
            ],
            status: None,
            ..NONE
        },
        Case {
            name: "pub accepted login",
            line: &[
                "pub", "-t", "{T}/x", "-m", "x", "-u", "alice", "-P", "secret",
            ],
            ..NONE
        },
        Case {
            name: "pub with nobody listening: status 1",
            line: &["pub", "-t", "{T}/x", "-m", "x", "-p", "{DEAD}"],
            status: Some(1),
            ..NONE
        },
        Case {
            name: "pub with a bad flag: status 1, nothing on stdout",
            line: &["pub", "-t", "{T}/x", "-m", "x", "--bogus"],
            status: Some(1),
            ..NONE
        },
        Case {
            name: "pub -q 3: status 1",
            line: &["pub", "-t", "{T}/x", "-m", "x", "-q", "3"],
            status: Some(1),
            ..NONE
        },
        Case {
            name: "pub to a wildcard topic: status 1",
            line: &["pub", "-t", "{T}/#", "-m", "x"],
            status: Some(1),
            ..NONE
        },
        // mosquitto_sub(1) EXAMPLES, with -C so that they end.
        Case {
            name: "sub EXAMPLES: temperature at QoS 1",
            line: &["sub", "-t", "{T}/sensors/temperature", "-q", "1", "-C", "1"],
            feed: &[&["-t", "{T}/sensors/temperature", "-m", "21.5", "-q", "1"]],
            ..NONE
        },
        Case {
            name: "sub EXAMPLES: single-level wildcards, -v",
            line: &[
                "sub",
                "-t",
                "{T}/sensors/machines/+/temperature/+",
                "-v",
                "-C",
                "2",
            ],
            feed: &[
                &["-t", "{T}/sensors/machines/a/temperature/sda", "-m", "40"],
                &["-t", "{T}/sensors/machines/a/humidity/sda", "-m", "no"],
                &["-t", "{T}/sensors/machines/b/temperature/sdb", "-m", "41"],
            ],
            ..NONE
        },
        Case {
            name: "sub EXAMPLES: -v on a multi-level wildcard",
            line: &["sub", "-v", "-t", "{T}/#", "-C", "2"],
            feed: &[&["-t", "{T}/a", "-m", "1"], &["-t", "{T}/a/b/c", "-m", "2"]],
            ..NONE
        },
        Case {
            name: "sub EXAMPLES: -F topic and hex payload",
            line: &["sub", "-F", "%t : %x", "-t", "{T}/#", "-C", "1"],
            feed: &[&["-t", "{T}/hex", "-m", "\u{1}ab\u{7f}"]],
            ..NONE
        },
        Case {
            name: "sub EXAMPLES: -F retained flag, QoS, message id, length",
            line: &[
                "sub",
                "-F",
                "%r : %q : %m : %l",
                "-q",
                "2",
                "-t",
                "{T}/#",
                "-C",
                "2",
            ],
            feed: &[
                &["-t", "{T}/a", "-m", "one", "-q", "2"],
                &["-t", "{T}/b", "-m", "four", "-q", "1"],
            ],
            ..NONE
        },
        Case {
            name: "sub EXAMPLES: -F with colour escapes",
            line: &[
                "sub",
                "-F",
                "\\e[92m%t \\e[96m%p\\e[0m",
                "-q",
                "2",
                "-t",
                "{T}/#",
                "-C",
                "1",
            ],
            feed: &[&["-t", "{T}/c", "-m", "green"]],
            ..NONE
        },
        Case {
            name: "sub -F widths, precision, escapes and literals",
            line: &[
                "sub",
                "-F",
                "[%10t][%-6l][%03l][%.3p]\\t%%@@",
                "-t",
                "{T}/w",
                "-C",
                "1",
            ],
            feed: &[&["-t", "{T}/w", "-m", "payload"]],
            ..NONE
        },
        Case {
            name: "sub -F 5.0 properties (%C %D %E %F %P %R)",
            line: &[
                "sub",
                "-V",
                "5",
                "-F",
                "%C|%D|%E|%F|%P|%R|%p",
                "-t",
                "{T}/p",
                "-C",
                "1",
            ],
            feed: &[&[
                "-t",
                "{T}/p",
                "-m",
                "x",
                "-D",
                "publish",
                "content-type",
                "ct",
                "-D",
                "publish",
                "correlation-data",
                "cd",
                "-D",
                "publish",
                "message-expiry-interval",
                "600",
                "-D",
                "publish",
                "payload-format-indicator",
                "1",
                "-D",
                "publish",
                "user-property",
                "a",
                "b",
                "-D",
                "publish",
                "response-topic",
                "{T}/r",
            ]],
            ..NONE
        },
        Case {
            name: "sub -N: payloads with no newline between them",
            line: &["sub", "-N", "-t", "{T}/n", "-C", "2"],
            feed: &[&["-t", "{T}/n", "-m", "a"], &["-t", "{T}/n", "-m", "b"]],
            ..NONE
        },
        Case {
            name: "sub: a binary payload printed as its bytes",
            line: &["sub", "-t", "{T}/bin", "-C", "1"],
            feed: &[&["-t", "{T}/bin", "-f", "{BIN}"]],
            ..NONE
        },
        Case {
            name: "sub -v: an empty payload prints (null)",
            line: &["sub", "-v", "-t", "{T}/e", "-C", "2"],
            feed: &[&["-t", "{T}/e", "-n"], &["-t", "{T}/e", "-m", "x"]],
            ..NONE
        },
        Case {
            name: "sub: an empty payload prints nothing, not even the newline",
            line: &["sub", "-t", "{T}/e", "-C", "2"],
            feed: &[&["-t", "{T}/e", "-n"], &["-t", "{T}/e", "-m", "x"]],
            ..NONE
        },
        Case {
            name: "sub -C 1: a retained message counts",
            line: &["sub", "-t", "{T}/ret", "-C", "1", "-v"],
            before: &[&["-t", "{T}/ret", "-m", "stale", "-r"]],
            ..NONE
        },
        Case {
            name: "sub -R: the retained message is not printed, the fresh one is",
            line: &["sub", "-R", "-t", "{T}/ret", "-C", "1"],
            before: &[&["-t", "{T}/ret", "-m", "stale", "-r"]],
            feed: &[&["-t", "{T}/ret", "-m", "fresh"]],
            ..NONE
        },
        Case {
            name: "sub -R under 5.0 (Retain Handling 2)",
            line: &["sub", "-R", "-V", "5", "-t", "{T}/ret", "-C", "1"],
            before: &[&["-t", "{T}/ret", "-m", "stale", "-r"]],
            feed: &[&["-t", "{T}/ret", "-m", "fresh"]],
            ..NONE
        },
        Case {
            name: "sub -T: filtered-out topics are not printed nor counted",
            line: &["sub", "-t", "{T}/#", "-T", "{T}/skip/#", "-v", "-C", "1"],
            feed: &[
                &["-t", "{T}/skip/this", "-m", "no"],
                &["-t", "{T}/keep", "-m", "yes"],
            ],
            ..NONE
        },
        Case {
            name: "sub -W 1 with nothing arriving: Timed out, status 27",
            line: &["sub", "-t", "{T}/nothing", "-W", "1"],
            status: Some(27),
            ..NONE
        },
        Case {
            name: "sub -d -i: libmosquitto's debug lines, QoS 1 in and out",
            line: &[
                "sub",
                "-d",
                "-i",
                "cli-test-sub-d",
                "-t",
                "{T}/d",
                "-q",
                "1",
                "-C",
                "1",
            ],
            feed: &[&["-t", "{T}/d", "-m", "hi", "-q", "1"]],
            ..NONE
        },
        Case {
            name: "sub -E -c -i: exit once subscribed",
            line: &[
                "sub",
                "-E",
                "-c",
                "-i",
                "cli-test-sub-e",
                "-t",
                "{T}/e",
                "-q",
                "1",
            ],
            ..NONE
        },
        Case {
            name: "sub refused login: exit status is the CONNACK return code",
            line: &["sub", "-t", "{T}/x", "-u", "alice", "-P", "wrong"],
            status: None,
            ..NONE
        },
        Case {
            name: "sub with a bad flag: status 1, nothing on stdout",
            line: &["sub", "-t", "{T}/x", "--bogus"],
            status: Some(1),
            ..NONE
        },
        Case {
            name: "sub -F with an invalid specifier: status 1",
            line: &["sub", "-t", "{T}/x", "-F", "%z"],
            status: Some(1),
            ..NONE
        },
        Case {
            name: "sub without a topic: status 1",
            line: &["sub", "-v"],
            status: Some(1),
            ..NONE
        },
        // mosquitto_rr(1)'s example, and its output flags.
        Case {
            name: "rr: request on a topic, the response printed",
            line: &["rr", "-t", "{T}/req", "-e", "{T}/resp", "-m", "message"],
            respond: Some("answer"),
            ..NONE
        },
        Case {
            name: "rr -v: the response with its topic",
            line: &[
                "rr", "-t", "{T}/req", "-e", "{T}/resp", "-m", "message", "-v", "-q", "1",
            ],
            respond: Some("answer"),
            ..NONE
        },
        Case {
            name: "rr -V mqttv311: no Response Topic, still the response",
            line: &[
                "rr", "-V", "mqttv311", "-t", "{T}/req", "-e", "{T}/resp", "-m", "m",
            ],
            respond: Some("answer"),
            ..NONE
        },
        Case {
            name: "rr -W 1 with nobody answering: status 27",
            line: &[
                "rr", "-t", "{T}/req", "-e", "{T}/resp", "-m", "m", "-W", "1",
            ],
            status: Some(27),
            ..NONE
        },
        Case {
            name: "rr refused login: exit status is the CONNACK reason code",
            line: &[
                "rr", "-t", "{T}/req", "-e", "{T}/resp", "-m", "m", "-u", "alice", "-P", "no",
            ],
            status: None,
            ..NONE
        },
    ]
}
