//! How mosquitto_sub and mosquitto_rr print a message: the payload's bytes as they came,
//! `-v` (topic, space, payload), or a `-F` format string; with a newline unless `-N`.

use std::io::Write;

use mqtt_session::mqtt_codec::Publish;

use crate::time::Moment;

/// The printing flags.
#[derive(Debug, Clone, Default)]
pub(crate) struct Output {
    /// `-F`, checked by [`check_format`].
    pub(crate) format: Option<String>,
    /// `-v`.
    pub(crate) verbose: bool,
    /// Not `-N`.
    pub(crate) eol: bool,
}

impl Output {
    /// Writes `m` to stdout and flushes it.
    pub(crate) fn print(&self, m: &Publish) -> std::io::Result<()> {
        let bytes = self.render(m, &Moment::now());
        let mut out = std::io::stdout().lock();
        out.write_all(&bytes)?;
        out.flush()
    }

    /// The bytes printed for `m` received at `now`.
    pub(crate) fn render(&self, m: &Publish, now: &Moment) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(f) = &self.format {
            formatted(f.as_bytes(), m, now, &mut out);
            if self.eol {
                out.push(b'\n');
            }
        } else if self.verbose {
            if m.payload.is_empty() {
                if self.eol {
                    out.extend_from_slice(m.topic.as_str().as_bytes());
                    out.extend_from_slice(b" (null)\n");
                }
            } else {
                out.extend_from_slice(m.topic.as_str().as_bytes());
                out.push(b' ');
                out.extend_from_slice(&m.payload);
                if self.eol {
                    out.push(b'\n');
                }
            }
        } else if !m.payload.is_empty() {
            // An empty payload prints nothing, not even the newline (as mosquitto_sub).
            out.extend_from_slice(&m.payload);
            if self.eol {
                out.push(b'\n');
            }
        }
        out
    }
}

/// Checks a `-F` format string as mosquitto does before connecting; the error is the line
/// to print.
pub(crate) fn check_format(f: &str) -> Result<(), String> {
    let s = f.as_bytes();
    let incomplete = || Err("Error: Incomplete format specifier.".to_string());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'%' => {
                if i == s.len() - 1 {
                    return incomplete();
                }
                if s[i + 1] == b'0' || s[i + 1] == b'-' {
                    i += 1;
                    if i == s.len() - 1 {
                        return incomplete();
                    }
                }
                while s[i + 1].is_ascii_digit() {
                    i += 1;
                    if i == s.len() - 1 {
                        return incomplete();
                    }
                }
                if s[i + 1] == b'.' {
                    i += 1;
                    if i == s.len() - 1 {
                        return incomplete();
                    }
                    while s[i + 1].is_ascii_digit() {
                        i += 1;
                        if i == s.len() - 1 {
                            return incomplete();
                        }
                    }
                }
                if !b"%ACDEFIlmPpqRSrtjJUxX".contains(&s[i + 1]) {
                    return Err(format!(
                        "Error: Invalid format specifier '{}'.",
                        char::from(s[i + 1])
                    ));
                }
                i += 1;
            }
            b'@' => {
                if i == s.len() - 1 {
                    return incomplete();
                }
                i += 1;
            }
            b'\\' => {
                if i == s.len() - 1 {
                    return Err("Error: Incomplete escape specifier.".into());
                }
                if !b"\\0aenrtv".contains(&s[i + 1]) {
                    return Err(format!(
                        "Error: Invalid escape specifier '{}'.",
                        char::from(s[i + 1])
                    ));
                }
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// A `%` conversion's flags.
#[derive(Clone, Copy)]
struct Spec {
    left: bool,
    pad: u8,
    width: usize,
    precision: Option<usize>,
}

/// mosquitto's formatted_print, byte for byte.
fn formatted(f: &[u8], m: &Publish, now: &Moment, out: &mut Vec<u8>) {
    let len = f.len();
    let mut i = 0;
    while i < len {
        match f[i] {
            b'%' => {
                let mut spec = Spec {
                    left: false,
                    pad: b' ',
                    width: 0,
                    precision: None,
                };
                if i < len - 1 {
                    i += 1;
                    if f[i] == b'-' {
                        spec.left = true;
                        if i < len - 1 {
                            i += 1;
                        }
                    }
                    if f[i] == b'0' {
                        spec.pad = b'0';
                        if i < len - 1 {
                            i += 1;
                        }
                    }
                    while i < len - 1 && f[i].is_ascii_digit() {
                        spec.width = spec.width * 10 + usize::from(f[i] - b'0');
                        i += 1;
                    }
                    if f[i] == b'.' && i < len - 1 {
                        i += 1;
                        let mut p = 0;
                        while i < len - 1 && f[i].is_ascii_digit() {
                            p = p * 10 + usize::from(f[i] - b'0');
                            i += 1;
                        }
                        spec.precision = Some(p);
                    }
                    percent(f[i], spec, m, now, out);
                }
            }
            b'@' => {
                if i < len - 1 {
                    i += 1;
                    match f[i] {
                        b'@' => out.push(b'@'),
                        b'N' => out.extend_from_slice(format!("{:09}", now.nanos()).as_bytes()),
                        c => now.strftime(c, out),
                    }
                }
            }
            b'\\' => {
                if i < len - 1 {
                    i += 1;
                    let c = match f[i] {
                        b'\\' => Some(b'\\'),
                        b'0' => Some(0),
                        b'a' => Some(7),
                        b'e' => Some(0x1b),
                        b'n' => Some(b'\n'),
                        b'r' => Some(b'\r'),
                        b't' => Some(b'\t'),
                        b'v' => Some(0x0b),
                        _ => None,
                    };
                    out.extend(c);
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
}

fn percent(c: u8, spec: Spec, m: &Publish, now: &Moment, out: &mut Vec<u8>) {
    let p = &m.properties;
    match c {
        b'%' => out.push(b'%'),
        b'A' => int_or_blank(p.topic_alias.map(|a| i64::from(a.get())), spec, out),
        b'C' => match &p.content_type {
            Some(s) => string(s.as_str().as_bytes(), spec, out),
            None => blank(b' ', spec.width, out),
        },
        b'D' => {
            if let Some(d) = &p.correlation_data {
                out.extend_from_slice(d);
            }
        }
        b'E' => int_or_blank(p.message_expiry_interval.map(i64::from), spec, out),
        b'F' => int_or_blank(p.payload_format_indicator.map(i64::from), spec, out),
        b'I' => string(now.iso8601().as_bytes(), spec, out),
        b'j' => json(m, now, false, out),
        b'J' => json(m, now, true, out),
        b'l' => int(m.payload.len() as i64, spec, out),
        b'm' => int(
            m.qos_pid.packet_id().map_or(0, |id| i64::from(id.get())),
            spec,
            out,
        ),
        b'P' => {
            for (n, (k, v)) in p.user_properties.iter().enumerate() {
                if n > 0 {
                    out.push(b' ');
                }
                out.extend_from_slice(k.as_str().as_bytes());
                out.push(b':');
                out.extend_from_slice(v.as_str().as_bytes());
            }
        }
        b'p' => payload(&m.payload, 0, spec, out),
        b'q' => out.push(b'0' + m.qos_pid.qos() as u8),
        b'R' => {
            if let Some(t) = &p.response_topic {
                string(t.as_str().as_bytes(), spec, out);
            }
        }
        b'r' => out.push(if m.retain { b'1' } else { b'0' }),
        b'S' => int_or_blank(
            p.subscription_identifiers
                .first()
                .map(|s| i64::from(s.get())),
            spec,
            out,
        ),
        b't' => string(m.topic.as_str().as_bytes(), spec, out),
        b'U' => out.extend_from_slice(format!("{}.{:09}", now.unix(), now.nanos()).as_bytes()),
        b'x' => payload(&m.payload, 1, spec, out),
        b'X' => payload(&m.payload, 2, spec, out),
        _ => {}
    }
}

fn blank(pad: u8, width: usize, out: &mut Vec<u8>) {
    out.extend(std::iter::repeat_n(pad, width));
}

fn int_or_blank(v: Option<i64>, spec: Spec, out: &mut Vec<u8>) {
    match v {
        Some(v) => int(v, spec, out),
        None => blank(spec.pad, spec.width, out),
    }
}

/// printf's `%d` with `-`, `0` and a width.
fn int(v: i64, spec: Spec, out: &mut Vec<u8>) {
    let w = spec.width;
    let s = if spec.left {
        format!("{v:<w$}")
    } else if spec.pad == b'0' {
        format!("{v:0w$}")
    } else {
        format!("{v:w$}")
    };
    out.extend_from_slice(s.as_bytes());
}

/// printf's `%s` with `-`, a width and a precision, counting bytes.
fn string(v: &[u8], spec: Spec, out: &mut Vec<u8>) {
    let v = match spec.precision {
        Some(p) => &v[..v.len().min(p)],
        None => v,
    };
    let pad = spec.width.saturating_sub(v.len());
    if !spec.left {
        blank(b' ', pad, out);
    }
    out.extend_from_slice(v);
    if spec.left {
        blank(b' ', pad, out);
    }
}

/// mosquitto's write_payload: raw (`hex` 0), lower-case hex (1) or upper-case hex (2),
/// padded and cut to a width as mosquitto does (a hex payload cut to a width prints half
/// as many bytes; `-` without a width pads with as many spaces as the payload has bytes).
fn payload(p: &[u8], hex: u8, spec: Spec, out: &mut Vec<u8>) {
    let width = spec.width as i64;
    let mut len = p.len() as i64;
    let padlen = if width > 0 {
        len = len.min(width);
        if hex > 0 {
            len /= 2;
            width - len * 2
        } else {
            width - len
        }
    } else {
        width - len
    };
    if !spec.left && padlen > 0 {
        blank(spec.pad, padlen as usize, out);
    }
    let shown = &p[..len.max(0) as usize];
    match hex {
        0 => out.extend_from_slice(shown),
        1 => shown
            .iter()
            .for_each(|b| out.extend_from_slice(format!("{b:02x}").as_bytes())),
        _ => shown
            .iter()
            .for_each(|b| out.extend_from_slice(format!("{b:02X}").as_bytes())),
    }
    if spec.left {
        blank(b' ', padlen.unsigned_abs() as usize, out);
    }
}

/// `%j` (payload as a JSON string) and `%J` (payload as JSON, which it must be), as
/// mosquitto built with cJSON prints them, unformatted.
pub(crate) fn json(m: &Publish, now: &Moment, raw: bool, out: &mut Vec<u8>) {
    let start = out.len();
    let mut tst = now.iso8601();
    // "2020-05-06T21:48:00.123456Z+0100": microseconds, then Z, then the offset.
    tst.insert_str(19, &format!(".{:06}Z", now.nanos() / 1000));
    out.extend_from_slice(b"{\"tst\":");
    json_string(tst.as_bytes(), out);
    out.extend_from_slice(b",\"topic\":");
    json_string(m.topic.as_str().as_bytes(), out);
    let qos = m.qos_pid.qos() as u8;
    out.extend_from_slice(
        format!(
            ",\"qos\":{qos},\"retain\":{},\"payloadlen\":{}",
            u8::from(m.retain),
            m.payload.len()
        )
        .as_bytes(),
    );
    if let Some(id) = m.qos_pid.packet_id() {
        out.extend_from_slice(format!(",\"mid\":{}", id.get()).as_bytes());
    }
    let p = &m.properties;
    if !p.is_empty() {
        out.extend_from_slice(b",\"properties\":{");
        let mut first = true;
        let mut key = |k: &str, out: &mut Vec<u8>| {
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            json_string(k.as_bytes(), out);
            out.push(b':');
        };
        if let Some(v) = p.payload_format_indicator {
            key("payload-format-indicator", out);
            out.extend_from_slice(u8::from(v).to_string().as_bytes());
        }
        if let Some(v) = p.message_expiry_interval {
            key("message-expiry-interval", out);
            out.extend_from_slice(v.to_string().as_bytes());
        }
        if let Some(v) = p.topic_alias {
            key("topic-alias", out);
            out.extend_from_slice(v.to_string().as_bytes());
        }
        if let Some(v) = &p.response_topic {
            key("response-topic", out);
            json_string(v.as_str().as_bytes(), out);
        }
        if let Some(v) = &p.correlation_data {
            key("correlation-data", out);
            json_string(v, out);
        }
        if let Some(v) = &p.content_type {
            key("content-type", out);
            json_string(v.as_str().as_bytes(), out);
        }
        for v in &p.subscription_identifiers {
            key("subscription-identifier", out);
            out.extend_from_slice(v.get().to_string().as_bytes());
        }
        if !p.user_properties.is_empty() {
            key("user-properties", out);
            out.push(b'{');
            for (n, (k, v)) in p.user_properties.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                json_string(k.as_str().as_bytes(), out);
                out.push(b':');
                json_string(v.as_str().as_bytes(), out);
            }
            out.push(b'}');
        }
        out.push(b'}');
    }
    out.extend_from_slice(b",\"payload\":");
    if m.payload.is_empty() {
        out.extend_from_slice(b"null");
    } else if raw {
        match minify(&m.payload) {
            Some(j) => out.extend_from_slice(&j),
            None => {
                // mosquitto prints nothing of the message then, only this on stderr.
                eprintln!(
                    "Error: Message payload is not valid JSON on topic {}.",
                    m.topic
                );
                out.truncate(start);
                return;
            }
        }
    } else {
        json_string(&m.payload, out);
    }
    out.push(b'}');
}

/// A JSON string as cJSON writes one: up to the first NUL (a C string), `"` and `\`
/// escaped, control characters as `\b`, `\f`, `\n`, `\r`, `\t` or `\u00xx`, other bytes
/// as they are.
fn json_string(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in s.iter().take_while(|&&b| b != 0) {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b if b < 0x20 => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            b => out.push(b),
        }
    }
    out.push(b'"');
}

/// `payload` without the whitespace between JSON tokens, or `None` if it is not one JSON
/// value.
pub(crate) fn minify(payload: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(payload.len());
    let mut r = Json { s: payload, i: 0 };
    r.value(&mut out, 0)?;
    r.ws();
    (r.i == payload.len()).then_some(out)
}

/// A JSON reader that copies each token it checks.
struct Json<'a> {
    s: &'a [u8],
    i: usize,
}

impl Json<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn value(&mut self, out: &mut Vec<u8>, depth: usize) -> Option<()> {
        // Nested deeper than cJSON's own limit: refused, rather than the stack spent.
        if depth > 1000 {
            return None;
        }
        self.ws();
        match self.peek()? {
            b'{' => self.seq(out, depth, b'}', true),
            b'[' => self.seq(out, depth, b']', false),
            b'"' => self.string(out),
            b't' => self.word(b"true", out),
            b'f' => self.word(b"false", out),
            b'n' => self.word(b"null", out),
            _ => self.number(out),
        }
    }

    fn seq(&mut self, out: &mut Vec<u8>, depth: usize, close: u8, object: bool) -> Option<()> {
        out.push(self.s[self.i]);
        self.i += 1;
        self.ws();
        if self.peek()? == close {
            self.i += 1;
            out.push(close);
            return Some(());
        }
        loop {
            if object {
                self.ws();
                if self.peek()? != b'"' {
                    return None;
                }
                self.string(out)?;
                self.ws();
                if self.peek()? != b':' {
                    return None;
                }
                self.i += 1;
                out.push(b':');
            }
            self.value(out, depth + 1)?;
            self.ws();
            match self.peek()? {
                b',' => {
                    self.i += 1;
                    out.push(b',');
                }
                c if c == close => {
                    self.i += 1;
                    out.push(close);
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    fn string(&mut self, out: &mut Vec<u8>) -> Option<()> {
        let start = self.i;
        self.i += 1;
        loop {
            match self.peek()? {
                b'"' => break,
                b'\\' => self.i += 2,
                c if c < 0x20 => return None,
                _ => self.i += 1,
            }
        }
        self.i += 1;
        out.extend_from_slice(self.s.get(start..self.i)?);
        Some(())
    }

    fn word(&mut self, w: &[u8], out: &mut Vec<u8>) -> Option<()> {
        if self.s.get(self.i..self.i + w.len())? != w {
            return None;
        }
        self.i += w.len();
        out.extend_from_slice(w);
        Some(())
    }

    fn number(&mut self, out: &mut Vec<u8>) -> Option<()> {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E'))
        {
            self.i += 1;
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).ok()?;
        text.parse::<f64>().ok()?;
        out.extend_from_slice(text.as_bytes());
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqtt_session::mqtt_codec::{PacketId, QosPid, TopicName};

    fn message(topic: &str, payload: &[u8]) -> Publish {
        Publish::new(TopicName::new(topic.to_string()).unwrap(), payload.to_vec())
    }

    fn render(o: &Output, m: &Publish) -> Vec<u8> {
        o.render(m, &Moment::at(1_470_818_858, 786_368_637))
    }

    /// The three forms of mosquitto_sub's OUTPUT FORMAT section, -N included.
    #[test]
    fn payload_verbose_and_format() {
        let m = message("a/b", b"hi\x00\xff");
        let plain = Output {
            eol: true,
            ..Default::default()
        };
        assert_eq!(render(&plain, &m), b"hi\x00\xff\n");
        let verbose = Output {
            verbose: true,
            eol: true,
            ..Default::default()
        };
        assert_eq!(render(&verbose, &m), b"a/b hi\x00\xff\n");
        assert_eq!(render(&verbose, &message("e", b"")), b"e (null)\n");
        assert_eq!(render(&plain, &message("e", b"")), b"");
        let f = Output {
            format: Some("%t|%5l|%-4q|%x|%X|%r|@Y-@m-@d|\\t%%".into()),
            eol: false,
            ..Default::default()
        };
        assert_eq!(
            render(&f, &m),
            b"a/b|    4|0|686900ff|686900FF|0|2016-08-10|\t%"
        );
    }

    /// Widths and precisions of strings and numbers, as printf pads them.
    #[test]
    fn widths() {
        let mut m = message("topic", b"payload");
        m.qos_pid = QosPid::AtLeastOnce(PacketId::new(7).unwrap());
        let f = |s: &str| {
            render(
                &Output {
                    format: Some(s.into()),
                    ..Default::default()
                },
                &m,
            )
        };
        assert_eq!(f("[%8t]"), b"[   topic]");
        assert_eq!(f("[%-8t]"), b"[topic   ]");
        assert_eq!(f("[%.3t]"), b"[top]");
        assert_eq!(f("[%04m]"), b"[0007]");
        assert_eq!(f("[%10p]"), b"[   payload]");
        assert_eq!(f("[%C]"), b"[]");
        assert_eq!(f("[%5C]"), b"[     ]");
    }

    /// mosquitto's checks of a format string.
    #[test]
    fn format_checks() {
        assert!(check_format("%t %p @Y \\n").is_ok());
        assert_eq!(
            check_format("%z"),
            Err("Error: Invalid format specifier 'z'.".into())
        );
        assert!(check_format("abc%").is_err());
        assert!(check_format("\\q").is_err());
    }

    /// %j and %J in cJSON's unformatted layout.
    #[test]
    fn json_forms() {
        let m = message("t", b"a\"b\n");
        let now = Moment::at(1_470_818_858, 786_368_637);
        let mut out = Vec::new();
        json(&m, &now, false, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"tst":"2016-08-10T08:47:38.786368Z+0000","topic":"t","qos":0,"retain":0,"payloadlen":4,"payload":"a\"b\n"}"#
        );
        assert_eq!(
            minify(b" { \"a\" : [1, 2.5, true] ,\"b\":null} ").unwrap(),
            br#"{"a":[1,2.5,true],"b":null}"#
        );
        assert!(minify(b"{\"a\":}").is_none());
        assert!(minify(b"1 2").is_none());
    }
}
