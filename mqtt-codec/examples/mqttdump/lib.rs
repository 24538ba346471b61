//! The packet inspector's logic, apart from `main` so that tests can call [`run`] with
//! their own arguments, input and output.
//!
//! Each input is one buffer, decoded as the stream of packets a receiver would read from
//! one connection: packet after packet until the buffer is used up, the buffer ends inside
//! a packet, or a packet is bad (a receiver closes the connection then, so the rest of that
//! buffer is not decoded).

use std::ffi::OsString;
use std::fmt;
use std::io::{self, Read, Write};

use mqtt_codec::{
    BytesMut, DecodeContext, DecodeError, Decoded, MAX_PACKET_SIZE, Packet, PacketType,
    ProtocolVersion,
};
use serde::Serialize;

#[path = "text.rs"]
pub mod text;

/// The help text `--help` prints.
pub const USAGE: &str = "\
mqttdump: decodes MQTT control packets and prints one line per packet

Usage: mqttdump [--protocol 3.1.1|5] [--json] [HEX...]

Each HEX argument is one buffer (the bytes one connection carried), decoded as a stream
of packets. Hex may be split by whitespace or ':' and its groups may start with 0x:
  101000044d5154540402003c000474657374
  '10 10 00 04 4d 51 54 54 04 02 00 3c 00 04 74 65 73 74'   10:10:00:04:...   0x10 0x10 ...
Without HEX, standard input is one buffer: hex text if it is (ignoring whitespace), else
raw bytes (a capture).

Options:
  --protocol V  decode as MQTT V (3.1.1 or 5; also 3.1) whatever a CONNECT says.
                Without it each buffer uses the version of its CONNECT, else 5.
  --json        one JSON object per line: a packet, {\"error\": ...} or {\"incomplete\": ...}
  -h, --help    print this help

Exit status: 0 when every buffer decoded cleanly, 1 when any held a malformed packet or
ended inside one, 2 for a usage error.
";

/// Every buffer decoded cleanly.
pub const EXIT_OK: i32 = 0;
/// Some buffer held a bad packet or ended inside one (or output could not be written).
pub const EXIT_BAD_INPUT: i32 = 1;
/// The command line was wrong.
pub const EXIT_USAGE: i32 = 2;

/// How packets are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One readable line per packet.
    Text,
    /// One JSON object per line.
    Json,
}

/// What the command line asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The version every packet is decoded with, when `--protocol` gave one.
    pub protocol: Option<ProtocolVersion>,
    /// The output format.
    pub format: Format,
    /// The buffers given as HEX arguments; empty means standard input.
    pub buffers: Vec<Vec<u8>>,
    /// `--help` was given.
    pub help: bool,
}

impl Options {
    /// Reads the command line (without the program name). Every HEX argument is decoded
    /// here, so a usage error is reported before anything is printed.
    pub fn parse<I, S>(args: I) -> Result<Self, String>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let mut opts = Options {
            protocol: None,
            format: Format::Text,
            buffers: Vec::new(),
            help: false,
        };
        let mut args = args.into_iter().map(Into::into);
        let mut only_hex = false;
        let mut position = 0;
        while let Some(arg) = args.next() {
            let Some(arg) = arg.to_str().map(str::to_owned) else {
                return Err(format!("argument {:?} is not UTF-8", arg));
            };
            if !only_hex && arg.starts_with('-') {
                let (name, inline) = match arg.split_once('=') {
                    Some((n, v)) => (n, Some(v.to_owned())),
                    None => (arg.as_str(), None),
                };
                match (name, inline) {
                    ("--", None) => only_hex = true,
                    ("-h" | "--help", None) => opts.help = true,
                    ("--json", None) => opts.format = Format::Json,
                    ("--protocol", value) => {
                        let value = match value.or_else(|| args.next()?.into_string().ok()) {
                            Some(v) => v,
                            None => return Err("--protocol needs a version: 3.1.1 or 5".into()),
                        };
                        opts.protocol = Some(parse_protocol(&value)?);
                    }
                    _ => return Err(format!("unknown option {arg:?}")),
                }
                continue;
            }
            position += 1;
            match parse_hex(&arg) {
                Ok(bytes) if bytes.is_empty() => {
                    return Err(format!("argument {position} holds no hex digits"));
                }
                Ok(bytes) => opts.buffers.push(bytes),
                Err(e) => return Err(format!("argument {position} is not hex: {e}")),
            }
        }
        Ok(opts)
    }
}

fn parse_protocol(value: &str) -> Result<ProtocolVersion, String> {
    match value {
        "3.1.1" | "311" => Ok(ProtocolVersion::V3_1_1),
        "5" | "5.0" => Ok(ProtocolVersion::V5),
        "3.1" | "31" => Ok(ProtocolVersion::V3_1),
        _ => Err(format!(
            "unknown protocol version {value:?} (expected 3.1.1 or 5)"
        )),
    }
}

/// Why text is not hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HexError {
    /// A character that is neither a hex digit nor a separator.
    NotHex(char),
    /// A group of digits of odd length: which bytes it means is ambiguous.
    OddDigits(String),
    /// `0x` with no digits after it.
    EmptyPrefix,
}

impl fmt::Display for HexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotHex(c) => write!(f, "{c:?} is not a hex digit"),
            Self::OddDigits(group) => write!(f, "odd number of hex digits in {group:?}"),
            Self::EmptyPrefix => f.write_str("0x with no digits after it"),
        }
    }
}

/// Decodes hex text: groups of hex digits, each of even length and optionally starting
/// with `0x`, separated by whitespace or `:`.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, HexError> {
    let mut out = Vec::with_capacity(text.len() / 2);
    for group in text.split(|c: char| c.is_whitespace() || c == ':') {
        if group.is_empty() {
            continue;
        }
        let digits = match group
            .strip_prefix("0x")
            .or_else(|| group.strip_prefix("0X"))
        {
            Some("") => return Err(HexError::EmptyPrefix),
            Some(d) => d,
            None => group,
        };
        if let Some(c) = digits.chars().find(|c| !c.is_ascii_hexdigit()) {
            return Err(HexError::NotHex(c));
        }
        if !digits.len().is_multiple_of(2) {
            return Err(HexError::OddDigits(group.to_owned()));
        }
        for pair in digits.as_bytes().chunks_exact(2) {
            out.push((hex_value(pair[0]) << 4) | hex_value(pair[1]));
        }
    }
    Ok(out)
}

/// The value of an ASCII hex digit (the caller has checked it is one).
fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    }
}

/// Standard input as a buffer: its hex decoding when it is hex text, else its raw bytes.
pub fn stdin_buffer(input: Vec<u8>) -> Vec<u8> {
    match std::str::from_utf8(&input).ok().map(parse_hex) {
        Some(Ok(bytes)) => bytes,
        _ => input,
    }
}

/// Runs the inspector: `args` without the program name, `stdin` read only when no HEX
/// argument is given, packets to `stdout`, usage errors to `stderr`. Returns the exit
/// status ([`EXIT_OK`], [`EXIT_BAD_INPUT`] or [`EXIT_USAGE`]).
pub fn run<I, S>(
    args: I,
    stdin: &mut impl Read,
    stdout: &mut impl Write,
    stderr: &mut impl Write,
) -> i32
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    let opts = match Options::parse(args) {
        Ok(opts) => opts,
        Err(msg) => {
            // Nothing useful is left to do when even stderr fails.
            let _ = writeln!(stderr, "mqttdump: {msg}\nTry 'mqttdump --help'.");
            return EXIT_USAGE;
        }
    };
    let result = if opts.help {
        stdout.write_all(USAGE.as_bytes()).map(|()| true)
    } else {
        dump_all(&opts, stdin, stdout)
    };
    match result.and_then(|clean| stdout.flush().map(|()| clean)) {
        Ok(true) => EXIT_OK,
        Ok(false) => EXIT_BAD_INPUT,
        Err(e) => {
            // A reader that stopped early (`mqttdump ... | head`) needs no message.
            if e.kind() != io::ErrorKind::BrokenPipe {
                let _ = writeln!(stderr, "mqttdump: {e}");
            }
            EXIT_BAD_INPUT
        }
    }
}

/// Dumps every buffer; true when all decoded cleanly.
fn dump_all(opts: &Options, stdin: &mut impl Read, out: &mut impl Write) -> io::Result<bool> {
    let mut clean = true;
    if opts.buffers.is_empty() {
        let mut input = Vec::new();
        stdin.read_to_end(&mut input)?;
        clean &= dump_buffer(&stdin_buffer(input), opts, out)?;
    }
    for buffer in &opts.buffers {
        clean &= dump_buffer(buffer, opts, out)?;
    }
    Ok(clean)
}

/// Decodes one buffer as a stream of packets and prints each; true when the buffer held
/// whole, valid packets only.
fn dump_buffer(bytes: &[u8], opts: &Options, out: &mut impl Write) -> io::Result<bool> {
    let mut buf = BytesMut::from(bytes);
    // The version a CONNECT in this buffer announced.
    let mut announced = None;
    while !buf.is_empty() {
        let is_connect = buf[0] >> 4 == PacketType::Connect as u8;
        let cx = DecodeContext {
            // A CONNECT decodes by its own protocol level.
            version: if is_connect {
                opts.protocol
            } else {
                Some(opts.protocol.or(announced).unwrap_or(ProtocolVersion::V5))
            },
            max_packet_size: MAX_PACKET_SIZE,
        };
        match Packet::decode_stream(&mut buf, &cx) {
            Ok(Decoded::Packet(packet)) => {
                if let Packet::Connect(connect) = &packet {
                    announced = Some(connect.protocol);
                }
                write_packet(out, opts.format, &packet)?;
            }
            Ok(Decoded::Incomplete { needed }) => {
                write_incomplete(out, opts.format, needed, header_complete(&buf))?;
                return Ok(false);
            }
            Err(e) => {
                write_error(out, opts.format, &e)?;
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// Whether `buf` holds a whole fixed header, so that the count of missing bytes is exact.
fn header_complete(buf: &[u8]) -> bool {
    buf.iter().skip(1).take(4).any(|b| b & 0x80 == 0)
}

fn write_packet(out: &mut impl Write, format: Format, packet: &Packet) -> io::Result<()> {
    match format {
        Format::Text => writeln!(out, "{}", text::packet_line(packet)),
        Format::Json => {
            serde_json::to_writer(&mut *out, packet)?;
            writeln!(out)
        }
    }
}

/// The JSON line for a decode error.
#[derive(Serialize)]
struct ErrorLine<'a> {
    error: String,
    reason_code: u8,
    kind: String,
    rule_id: Option<&'a str>,
    packet: Option<PacketType>,
}

fn write_error(out: &mut impl Write, format: Format, e: &DecodeError) -> io::Result<()> {
    let code = e.reason_code();
    match format {
        Format::Text => {
            let name = code.name().unwrap_or("unassigned");
            writeln!(out, "error: {e} (reason code 0x{:02X} {name})", code.0)
        }
        Format::Json => {
            let line = ErrorLine {
                error: e.to_string(),
                reason_code: code.0,
                kind: kind_name(e),
                rule_id: e.rule_id(),
                packet: e.packet(),
            };
            serde_json::to_writer(&mut *out, &line)?;
            writeln!(out)
        }
    }
}

/// The error kind's variant name (`"Malformed"`), without the data some kinds carry
/// (that is in the error text).
fn kind_name(e: &DecodeError) -> String {
    match serde_json::to_value(e.kind()) {
        Ok(serde_json::Value::String(name)) => name,
        Ok(serde_json::Value::Object(map)) => map.keys().next().cloned().unwrap_or_default(),
        _ => String::new(),
    }
}

#[derive(Serialize)]
struct IncompleteLine {
    incomplete: Needed,
}

#[derive(Serialize)]
struct Needed {
    needed: usize,
}

fn write_incomplete(
    out: &mut impl Write,
    format: Format,
    needed: usize,
    exact: bool,
) -> io::Result<()> {
    match format {
        Format::Text => {
            let bytes = if needed == 1 { "byte" } else { "bytes" };
            let at_least = if exact { "" } else { "at least " };
            writeln!(
                out,
                "incomplete: the buffer ends inside a packet, {at_least}{needed} more {bytes} needed"
            )
        }
        Format::Json => {
            let line = IncompleteLine {
                incomplete: Needed { needed },
            };
            serde_json::to_writer(&mut *out, &line)?;
            writeln!(out)
        }
    }
}
