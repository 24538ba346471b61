//! The packet inspector (`examples/mqttdump`), driven through its `run` function with
//! arguments, standard input and output of the test's own.
#![cfg(all(feature = "serde", feature = "std"))]

#[path = "../examples/mqttdump/lib.rs"]
mod dump;

use mqtt_codec::{
    Bytes, Connect, MqttString, Packet, PacketId, ProtocolVersion, Publish, PublishProperties, QoS,
    QosPid, TopicName, Will,
};
use serde_json::Value;

/// The README's first command: an MQTT 3.1.1 CONNECT from client "test".
const README_CONNECT: &str = "101000044d5154540402003c000474657374";

struct Output {
    status: i32,
    stdout: String,
    stderr: String,
}

impl Output {
    fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// Every stdout line parsed as JSON (each must be one object).
    fn json(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}"));
                assert!(v.is_object(), "{l}");
                v
            })
            .collect()
    }
}

fn run_with_stdin(args: &[&str], stdin: &[u8]) -> Output {
    let mut input = stdin;
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    let status = dump::run(args, &mut input, &mut stdout, &mut stderr);
    Output {
        status,
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    }
}

fn run(args: &[&str]) -> Output {
    run_with_stdin(args, b"")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn encode(packet: Packet, version: ProtocolVersion) -> Vec<u8> {
    packet.to_bytes(version).unwrap().to_vec()
}

/// A QoS 1 PUBLISH of "hello" to "a/b" with packet id 7, encoded for `version`.
fn publish_hello(version: ProtocolVersion) -> Vec<u8> {
    let mut p = Publish::new(TopicName::new("a/b").unwrap(), "hello");
    p.qos_pid = QosPid::AtLeastOnce(PacketId::new(7).unwrap());
    encode(Packet::Publish(p), version)
}

fn connect(version: ProtocolVersion) -> Vec<u8> {
    let c = Connect::new(version, MqttString::new("test").unwrap());
    encode(Packet::Connect(Box::new(c)), version)
}

const PUBLISH_HELLO_LINE: &str =
    r#"PUBLISH qos=1 id=7 retain=false topic="a/b" payload=5 bytes "hello""#;

#[test]
fn readme_command_prints_the_connect() {
    let out = run(&[README_CONNECT]);
    assert_eq!(out.status, dump::EXIT_OK);
    assert_eq!(
        out.stdout,
        "CONNECT protocol=3.1.1 client_id=\"test\" clean_start=true keep_alive=60\n"
    );
    assert_eq!(out.stderr, "");

    let out = run(&["--json", README_CONNECT]);
    assert_eq!(out.status, dump::EXIT_OK);
    let v = &out.json()[0];
    assert_eq!(v["type"], "Connect");
    assert_eq!(v["protocol"], "V3_1_1");
    assert_eq!(v["client_id"], "test");
    assert_eq!(v["keep_alive"], 60);
    assert_eq!(v["clean_start"], true);
}

#[test]
fn the_version_of_a_connect_decodes_the_rest_of_its_buffer() {
    // A 3.1.1 PUBLISH has no Property Length; read as v5, the payload's first byte would
    // be taken for one and the packet would be refused.
    let publish = publish_hello(ProtocolVersion::V3_1_1);
    let mut buffer = connect(ProtocolVersion::V3_1_1);
    buffer.extend_from_slice(&publish);

    let out = run(&[&hex(&buffer)]);
    assert_eq!(out.status, dump::EXIT_OK, "{}", out.stdout);
    assert_eq!(
        out.lines(),
        [
            r#"CONNECT protocol=3.1.1 client_id="test" clean_start=true keep_alive=60"#,
            PUBLISH_HELLO_LINE,
        ]
    );

    // Alone, the same PUBLISH is decoded as MQTT 5.0 and found malformed.
    let out = run(&["--json", &hex(&publish)]);
    assert_eq!(out.status, dump::EXIT_BAD_INPUT);
    let v = &out.json()[0];
    assert_eq!(v["reason_code"], 129);
    assert_eq!(v["packet"], "Publish");
}

#[test]
fn an_mqtt_3_1_connect_decodes_later_packets_as_3_1_1() {
    let mut buffer = connect(ProtocolVersion::V3_1);
    buffer.extend_from_slice(&publish_hello(ProtocolVersion::V3_1_1));
    let out = run(&[&hex(&buffer)]);
    assert_eq!(out.status, dump::EXIT_OK, "{}", out.stdout);
    assert_eq!(
        out.lines(),
        [
            r#"CONNECT protocol=3.1 client_id="test" clean_start=true keep_alive=60"#,
            PUBLISH_HELLO_LINE,
        ]
    );
}

#[test]
fn each_argument_is_its_own_buffer() {
    // The CONNECT's version does not carry over: the second buffer is decoded as 5.0.
    let v5_publish = publish_hello(ProtocolVersion::V5);
    let out = run(&[
        "--json",
        README_CONNECT,
        &hex(&v5_publish),
        "c000d000", // PINGREQ, PINGRESP
    ]);
    assert_eq!(out.status, dump::EXIT_OK);
    let types: Vec<_> = out.json().iter().map(|v| v["type"].clone()).collect();
    assert_eq!(types, ["Connect", "Publish", "PingReq", "PingResp"]);
    let publish = &out.json()[1];
    assert_eq!(publish["topic"], "a/b");
    assert_eq!(publish["payload"], "hello");
    assert_eq!(publish["qos_pid"]["AtLeastOnce"], 7);
}

#[test]
fn a_wildcard_in_a_publish_topic_is_an_error_line_mqtt_3_3_2_2() {
    // [MQTT-3.3.2-2] QoS 0 PUBLISH to "a/#", then a PINGREQ that must not be decoded: the
    // receiver closes the connection at the bad packet.
    let out = run(&["--json", "30050003612f23c000", "c000"]);
    assert_eq!(out.status, dump::EXIT_BAD_INPUT);
    let lines = out.json();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    let err = &lines[0];
    assert_eq!(err["reason_code"], 129);
    assert_eq!(err["kind"], "Malformed");
    assert_eq!(err["rule_id"], "MQTT-3.3.2-2");
    assert_eq!(err["packet"], "Publish");
    let text = err["error"].as_str().unwrap();
    assert!(text.contains("[MQTT-3.3.2-2]"), "{text}");
    // The next argument is decoded all the same.
    assert_eq!(lines[1]["type"], "PingReq");

    let out = run(&["30050003612f23"]);
    assert_eq!(out.status, dump::EXIT_BAD_INPUT);
    assert_eq!(
        out.stdout,
        "error: malformed packet in PUBLISH: [MQTT-3.3.2-2] topic name contains a wildcard \
         (reason code 0x81 Malformed Packet)\n"
    );
}

#[test]
fn a_protocol_error_carries_its_own_reason_code() {
    // A v5 PUBACK with the Reason String property twice: a Protocol Error (0x82).
    let out = run(&["--json", "400a000710061f00001f0000"]);
    assert_eq!(out.status, dump::EXIT_BAD_INPUT);
    let err = &out.json()[0];
    assert_eq!(err["reason_code"], 130);
    assert_eq!(err["kind"], "ProtocolError");
    assert_eq!(err["packet"], "PubAck");
    assert_eq!(err["rule_id"], Value::Null);
}

#[test]
fn a_buffer_ending_inside_a_packet_says_how_many_bytes_are_missing() {
    // The README's CONNECT without its last 3 bytes.
    let cut = &README_CONNECT[..README_CONNECT.len() - 6];
    let out = run(&["--json", cut]);
    assert_eq!(out.status, dump::EXIT_BAD_INPUT);
    assert_eq!(out.stdout, "{\"incomplete\":{\"needed\":3}}\n");

    let out = run(&[cut]);
    assert_eq!(out.status, dump::EXIT_BAD_INPUT);
    assert_eq!(
        out.stdout,
        "incomplete: the buffer ends inside a packet, 3 more bytes needed\n"
    );

    // Packets before the cut are printed; inside the fixed header only a minimum is known.
    let out = run(&[&format!("c000{}", &README_CONNECT[..2])]);
    assert_eq!(
        out.lines(),
        [
            "PINGREQ",
            "incomplete: the buffer ends inside a packet, at least 1 more byte needed"
        ]
    );
    assert_eq!(out.status, dump::EXIT_BAD_INPUT);
}

#[test]
fn protocol_option_changes_how_a_puback_decodes() {
    // PUBACK id 7 with reason code 0x10: valid in 5.0; in 3.1.1 a PUBACK is exactly a
    // packet id, so the extra byte is Malformed.
    let out = run(&["4003000710"]);
    assert_eq!(out.status, dump::EXIT_OK);
    assert_eq!(
        out.stdout,
        "PUBACK id=7 reason=0x10 (No matching subscribers)\n"
    );

    let out = run(&["--json", "--protocol", "5", "4003000710"]);
    assert_eq!(out.status, dump::EXIT_OK);
    assert_eq!(out.json()[0]["reason_code"], 16);
    assert_eq!(out.json()[0]["type"], "PubAck");

    let out = run(&["--json", "--protocol", "3.1.1", "4003000710"]);
    assert_eq!(out.status, dump::EXIT_BAD_INPUT);
    let err = &out.json()[0];
    assert_eq!(err["reason_code"], 129);
    assert_eq!(err["packet"], "PubAck");

    let out = run(&["--protocol=3.1.1", "40020007"]);
    assert_eq!(out.status, dump::EXIT_OK);
    assert_eq!(out.stdout, "PUBACK id=7\n");
}

#[test]
fn protocol_option_overrides_the_connects_version_but_not_the_connect() {
    // A v5 CONNECT still decodes as 5.0; the 3.1.1 PUBLISH after it follows --protocol.
    let mut buffer = connect(ProtocolVersion::V5);
    buffer.extend_from_slice(&publish_hello(ProtocolVersion::V3_1_1));
    let out = run(&["--protocol", "3.1.1", &hex(&buffer)]);
    assert_eq!(out.status, dump::EXIT_OK, "{}", out.stdout);
    assert_eq!(
        out.lines(),
        [
            r#"CONNECT protocol=5.0 client_id="test" clean_start=true keep_alive=60"#,
            PUBLISH_HELLO_LINE,
        ]
    );
}

#[test]
fn hex_may_be_spaced_with_colons_and_0x() {
    let plain = run(&[README_CONNECT]);
    for spelled in [
        "10 10 00 04 4d 51 54 54 04 02 00 3c 00 04 74 65 73 74",
        "10:10:00:04:4D:51:54:54:04:02:00:3C:00:04:74:65:73:74",
        "0x10 0x10 0x00 0x04 0x4d 0x51 0x54 0x54 0x04 0x02 0x00 0x3c 0x00 0x04 0x74 0x65 0x73 0x74",
        "0x1010 00044d515454\n0402003c 0004\t74657374",
    ] {
        let out = run(&[spelled]);
        assert_eq!(out.status, dump::EXIT_OK, "{spelled}: {}", out.stderr);
        assert_eq!(out.stdout, plain.stdout, "{spelled}");
    }
}

#[test]
fn bad_hex_is_a_usage_error_and_prints_no_packet() {
    for (arg, message) in [
        ("1010000", "odd number of hex digits in \"1010000\""),
        ("10 1 00", "odd number of hex digits in \"1\""),
        ("10zz", "'z' is not a hex digit"),
        ("0x", "0x with no digits after it"),
        ("", "holds no hex digits"),
    ] {
        let out = run(&[README_CONNECT, arg]);
        assert_eq!(out.status, dump::EXIT_USAGE, "{arg:?}");
        assert_eq!(out.stdout, "", "{arg:?}");
        assert!(out.stderr.contains("argument 2"), "{arg:?}: {}", out.stderr);
        assert!(out.stderr.contains(message), "{arg:?}: {}", out.stderr);
    }
}

#[test]
fn other_usage_errors_exit_2_and_help_exits_0() {
    for args in [
        &["--protocol", "4", README_CONNECT][..],
        &["--protocol"],
        &["--xml", README_CONNECT],
        &["-j"],
    ] {
        let out = run(args);
        assert_eq!(out.status, dump::EXIT_USAGE, "{args:?}");
        assert_eq!(out.stdout, "");
        assert!(out.stderr.starts_with("mqttdump: "), "{}", out.stderr);
    }
    let out = run(&["--help"]);
    assert_eq!(out.status, dump::EXIT_OK);
    assert_eq!(out.stdout, dump::USAGE);
    assert!(
        out.stdout
            .contains("Usage: mqttdump [--protocol 3.1.1|5] [--json] [HEX...]")
    );
}

#[test]
fn after_double_dash_every_argument_is_hex() {
    let out = run(&["--json", "--", README_CONNECT]);
    assert_eq!(out.status, dump::EXIT_OK);
    let out = run(&["--", "--json"]);
    assert_eq!(out.status, dump::EXIT_USAGE);
    assert!(
        out.stderr.contains("argument 1 is not hex"),
        "{}",
        out.stderr
    );
}

#[test]
fn stdin_hex_with_whitespace_is_one_buffer() {
    let input = "10 10 00 04 4d 51 54 54\n04 02 00 3c 00 04 74 65 73 74\r\n\
                 30 0a 00 03 61 2f 62 68 65 6c 6c 6f\n";
    let out = run_with_stdin(&[], input.as_bytes());
    assert_eq!(out.status, dump::EXIT_OK, "{}", out.stdout);
    assert_eq!(
        out.lines(),
        [
            r#"CONNECT protocol=3.1.1 client_id="test" clean_start=true keep_alive=60"#,
            r#"PUBLISH qos=0 retain=false topic="a/b" payload=5 bytes "hello""#,
        ]
    );
}

#[test]
fn stdin_raw_bytes_are_a_capture() {
    let mut capture = connect(ProtocolVersion::V3_1_1);
    capture.extend_from_slice(&publish_hello(ProtocolVersion::V3_1_1));
    capture.extend_from_slice(&[0xe0, 0x00]); // DISCONNECT
    let out = run_with_stdin(&["--json"], &capture);
    assert_eq!(out.status, dump::EXIT_OK, "{}", out.stdout);
    let types: Vec<_> = out.json().iter().map(|v| v["type"].clone()).collect();
    assert_eq!(types, ["Connect", "Publish", "Disconnect"]);

    // A capture that ends mid-packet is reported like an argument would be.
    let out = run_with_stdin(&["--json"], &capture[..capture.len() - 1]);
    assert_eq!(out.status, dump::EXIT_BAD_INPUT);
    assert_eq!(
        out.json()[2],
        serde_json::json!({"incomplete": {"needed": 1}})
    );
}

#[test]
fn stdin_is_not_read_when_hex_arguments_are_given() {
    let out = run_with_stdin(&["c000"], b"this would be malformed");
    assert_eq!(out.status, dump::EXIT_OK);
    assert_eq!(out.stdout, "PINGREQ\n");
}

#[test]
fn properties_are_shown_when_present() {
    let mut p = Publish::new(TopicName::new("t").unwrap(), vec![0xff, 0x00]);
    p.properties = PublishProperties {
        message_expiry_interval: Some(30),
        user_properties: vec![(MqttString::new("k").unwrap(), MqttString::new("v").unwrap())]
            .into(),
        ..PublishProperties::default()
    }
    .into();
    let bytes = encode(Packet::Publish(p), ProtocolVersion::V5);
    let out = run(&[&hex(&bytes)]);
    assert_eq!(out.status, dump::EXIT_OK);
    assert_eq!(
        out.stdout,
        "PUBLISH qos=0 retain=false topic=\"t\" payload=2 bytes 0xff00 \
         properties={message_expiry_interval=30 user_property=(\"k\", \"v\")}\n"
    );
}

#[test]
fn a_large_payload_is_cut_in_text_but_whole_in_json() {
    let payload = "x".repeat(1000);
    let p = Publish::new(TopicName::new("big").unwrap(), payload.clone());
    let bytes = hex(&encode(Packet::Publish(p), ProtocolVersion::V5));

    let out = run(&[&bytes]);
    assert_eq!(out.status, dump::EXIT_OK);
    let shown = "x".repeat(dump::text::PREVIEW_BYTES);
    assert_eq!(
        out.stdout,
        format!(
            "PUBLISH qos=0 retain=false topic=\"big\" payload=1000 bytes \"{shown}\"... (first {} shown)\n",
            dump::text::PREVIEW_BYTES
        )
    );

    let out = run(&["--json", &bytes]);
    assert_eq!(out.json()[0]["payload"], payload.as_str());
}

#[test]
fn every_packet_type_has_a_line() {
    // v5 packets, one buffer: CONNACK, PUBREC, PUBREL, PUBCOMP, SUBSCRIBE, SUBACK,
    // UNSUBSCRIBE, UNSUBACK, PINGRESP, DISCONNECT (0x8E), AUTH (0x18, method "m").
    let buffer = [
        "2003 01 00 00",                          // CONNACK session present, no properties
        "5002 0001",                              // PUBREC id 1
        "6202 0001",                              // PUBREL id 1
        "7003 0001 92",                           // PUBCOMP id 1, 0x92
        "820d 0002 00 0003 612f2b 15 0001 62 00", // SUBSCRIBE "a/+" qos 1 no_local rh 1, "b" qos 0
        "9005 0002 00 01 80",                     // SUBACK
        "a206 0003 00 0001 61",                   // UNSUBSCRIBE "a"
        "b004 0003 00 11",                        // UNSUBACK
        "d000",                                   // PINGRESP
        "e001 8e",                                // DISCONNECT Session taken over
        "f006 18 04 15 0001 6d",                  // AUTH
    ]
    .join(" ");
    let out = run(&[&buffer]);
    assert_eq!(out.status, dump::EXIT_OK, "{}", out.stdout);
    assert_eq!(
        out.lines(),
        [
            "CONNACK session_present=true reason=0x00 (Success)",
            "PUBREC id=1",
            "PUBREL id=1",
            "PUBCOMP id=1 reason=0x92 (Packet Identifier not found)",
            r#"SUBSCRIBE id=2 filters=["a/+" qos=1 no_local retain_handling=1, "b" qos=0]"#,
            "SUBACK id=2 reasons=[0x01 (Granted QoS 1), 0x80 (Unspecified error)]",
            r#"UNSUBSCRIBE id=3 filters=["a"]"#,
            "UNSUBACK id=3 reasons=[0x11 (No subscription existed)]",
            "PINGRESP",
            "DISCONNECT reason=0x8E (Session taken over)",
            r#"AUTH reason=0x18 (Continue authentication) properties={authentication_method="m"}"#,
        ]
    );
}

const README: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"));

/// Splits a README command line into words: spaces separate, single quotes group.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut started = false;
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                started = true;
            }
            ' ' if !quoted => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            _ => {
                word.push(c);
                started = true;
            }
        }
    }
    assert!(!quoted, "unbalanced quote in {line:?}");
    if started {
        words.push(word);
    }
    words
}

#[test]
fn the_readmes_mqttdump_command_still_works() {
    let prefix = "cargo run -p mqtt-codec --example mqttdump --features serde -- ";
    // The first mqttdump command with hex arguments (the usage line has `[--json]`).
    let args = README
        .lines()
        .filter_map(|l| l.strip_prefix(prefix))
        .find(|args| !args.starts_with('['))
        .expect("README.md shows a mqttdump command");
    let args = shell_words(args);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(&args);
    assert_eq!(out.status, dump::EXIT_OK, "{}", out.stderr);
    assert_eq!(
        out.stdout,
        "CONNECT protocol=3.1.1 client_id=\"test\" clean_start=true keep_alive=60\n"
    );
}

#[test]
fn the_readmes_examples_show_real_output() {
    let start = README
        .find("<!-- section: mqttdump -->")
        .expect("README section mqttdump");
    let section = &README[start..];
    let section = &section[..section.find("<!-- end: mqttdump -->").unwrap()];
    let mut examples = 0;
    let mut lines = section.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(command) = line.strip_prefix("$ mqttdump ") else {
            continue;
        };
        let mut expected = String::new();
        while let Some(next) = lines.next_if(|l| !l.starts_with('$') && !l.starts_with("```")) {
            expected.push_str(next);
            expected.push('\n');
        }
        let args = shell_words(command);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(&args);
        assert_eq!(out.stdout, expected, "README example `mqttdump {command}`");
        examples += 1;
    }
    assert!(examples >= 3, "only {examples} examples found");
}

#[test]
fn a_connect_shows_its_will_and_credentials_but_not_the_password() {
    let mut c = Connect::new(ProtocolVersion::V5, MqttString::new("cli").unwrap());
    c.username = Some(MqttString::new("user").unwrap());
    c.password = Some(Bytes::from_static(b"secret"));
    c.properties.session_expiry_interval = Some(300);
    let mut will = Will {
        topic: TopicName::new("last/will").unwrap(),
        payload: Bytes::from_static(b"bye"),
        qos: QoS::AtLeastOnce,
        retain: true,
        properties: Default::default(),
    };
    will.properties.correlation_data = Some(Bytes::from_static(&[1, 2, 0xff]));
    c.will = Some(will);
    let bytes = encode(Packet::Connect(Box::new(c)), ProtocolVersion::V5);

    let out = run(&[&hex(&bytes)]);
    assert_eq!(out.status, dump::EXIT_OK);
    assert_eq!(
        out.stdout,
        "CONNECT protocol=5.0 client_id=\"cli\" clean_start=true keep_alive=60 \
         will={topic=\"last/will\" qos=1 retain=true payload=3 bytes \"bye\" \
         properties={correlation_data=3 bytes 0x0102ff}} \
         username=\"user\" password=6 bytes properties={session_expiry_interval=300}\n"
    );
    assert!(!out.stdout.contains("secret"));
}
