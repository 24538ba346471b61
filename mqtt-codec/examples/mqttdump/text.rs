//! The readable form: one compact line per packet, its type first, then its main fields
//! as `name=value`, then its properties when it has any.

use std::fmt::{self, Write as _};
use std::num::{NonZeroU16, NonZeroU32};

use mqtt_codec::{
    AckProperties, AuthProperties, Bytes, ConnAckProperties, ConnectProperties,
    DisconnectProperties, MqttString, Packet, PubResponse, PublishProperties, QoS, QosPid,
    ReasonCode, RetainHandling, SubscribeProperties, SubscriptionId, TopicFilter, TopicName,
    UnsubscribeProperties, UserProperty, Will, WillProperties,
};

/// How many bytes of a payload or binary property are shown; the rest is cut with a note.
pub const PREVIEW_BYTES: usize = 64;

/// The packet as one line of text, without the line break.
pub fn packet_line(packet: &Packet) -> String {
    let mut l = Line(packet.packet_type().name().to_owned());
    match packet {
        Packet::Connect(c) => {
            l.field("protocol", c.protocol);
            l.field("client_id", Quoted(&c.client_id));
            l.field("clean_start", c.clean_start);
            l.field("keep_alive", c.keep_alive);
            if let Some(will) = &c.will {
                l.field("will", WillText(will));
            }
            if let Some(name) = &c.username {
                l.field("username", Quoted(name));
            }
            if let Some(password) = &c.password {
                // A password is shown by its length only.
                l.field("password", Count(password.len()));
            }
            l.properties(connect_props(&c.properties));
        }
        Packet::ConnAck(c) => {
            l.field("session_present", c.session_present);
            l.field("reason", c.reason_code);
            l.properties(connack_props(&c.properties));
        }
        Packet::Publish(p) => {
            l.field("qos", p.qos() as u8);
            if let QosPid::AtLeastOnce(id) | QosPid::ExactlyOnce(id) = p.qos_pid {
                l.field("id", id);
            }
            if p.dup {
                l.field("dup", true);
            }
            l.field("retain", p.retain);
            l.field("topic", Quoted(&p.topic));
            l.field("payload", Preview(&p.payload));
            l.properties(publish_props(&p.properties));
        }
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
            pub_response(&mut l, r);
        }
        Packet::Subscribe(s) => {
            l.field("id", s.packet_id);
            let filters = List(s.filters.iter().map(|(filter, o)| {
                let mut f = Quoted(filter).to_string();
                let _ = write!(f, " qos={}", o.qos as u8);
                if o.no_local {
                    f.push_str(" no_local");
                }
                if o.retain_as_published {
                    f.push_str(" retain_as_published");
                }
                if o.retain_handling != RetainHandling::SendAtSubscribe {
                    let _ = write!(f, " retain_handling={}", o.retain_handling as u8);
                }
                f
            }));
            l.field("filters", filters);
            l.properties(subscribe_props(&s.properties));
        }
        Packet::SubAck(s) => {
            l.field("id", s.packet_id);
            l.field("reasons", List(s.reason_codes.iter()));
            l.properties(ack_props(&s.properties));
        }
        Packet::Unsubscribe(u) => {
            l.field("id", u.packet_id);
            l.field("filters", List(u.filters.iter().map(Quoted)));
            l.properties(unsubscribe_props(&u.properties));
        }
        Packet::UnsubAck(u) => {
            l.field("id", u.packet_id);
            if !u.reason_codes.is_empty() {
                l.field("reasons", List(u.reason_codes.iter()));
            }
            l.properties(ack_props(&u.properties));
        }
        Packet::PingReq | Packet::PingResp => {}
        Packet::Disconnect(d) => {
            l.reason_if_not_success(d.reason_code);
            l.properties(disconnect_props(&d.properties));
        }
        Packet::Auth(a) => {
            l.reason_if_not_success(a.reason_code);
            l.properties(auth_props(&a.properties));
        }
    }
    l.0
}

fn pub_response(l: &mut Line, r: &PubResponse) {
    l.field("id", r.packet_id);
    l.reason_if_not_success(r.reason_code);
    l.properties(ack_props(&r.properties));
}

/// A line being built.
struct Line(String);

impl Line {
    fn field(&mut self, name: &str, value: impl fmt::Display) {
        let _ = write!(self.0, " {name}={value}");
    }

    /// Success is the default a sender may leave out, so only other codes are shown.
    fn reason_if_not_success(&mut self, code: ReasonCode) {
        if code != ReasonCode::SUCCESS {
            self.field("reason", code);
        }
    }

    fn properties(&mut self, props: Props) {
        if !props.0.is_empty() {
            let _ = write!(self.0, " properties={{{}}}", props.0);
        }
    }
}

/// A string field, quoted and escaped.
struct Quoted<'a, T: ?Sized>(&'a T);

impl fmt::Display for Quoted<'_, MqttString> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0.as_str())
    }
}

impl fmt::Display for Quoted<'_, TopicName> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0.as_str())
    }
}

impl fmt::Display for Quoted<'_, TopicFilter> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0.as_str())
    }
}

/// A byte count: `1 byte`, `5 bytes`.
struct Count(usize);

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = if self.0 == 1 { "byte" } else { "bytes" };
        write!(f, "{} {unit}", self.0)
    }
}

/// Binary data: its length, then its start as quoted text when it is UTF-8, else as hex,
/// cut after [`PREVIEW_BYTES`] with a note.
struct Preview<'a>(&'a [u8]);

impl fmt::Display for Preview<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.0;
        write!(f, "{}", Count(bytes.len()))?;
        if bytes.is_empty() {
            return Ok(());
        }
        let shown = match std::str::from_utf8(bytes) {
            Ok(text) => {
                let mut end = text.len().min(PREVIEW_BYTES);
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                write!(f, " {:?}", &text[..end])?;
                end
            }
            Err(_) => {
                let end = bytes.len().min(PREVIEW_BYTES);
                f.write_str(" 0x")?;
                for b in &bytes[..end] {
                    write!(f, "{b:02x}")?;
                }
                end
            }
        };
        if shown < bytes.len() {
            write!(f, "... (first {shown} shown)")?;
        }
        Ok(())
    }
}

/// A list: `[a, b]`.
struct List<I>(I);

impl<I> fmt::Display for List<I>
where
    I: Iterator + Clone,
    I::Item: fmt::Display,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, item) in self.0.clone().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{item}")?;
        }
        f.write_str("]")
    }
}

/// A Will Message: `{topic="t" qos=1 retain=false payload=...}`.
struct WillText<'a>(&'a Will);

impl fmt::Display for WillText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = self.0;
        let mut l = Line(String::new());
        l.field("topic", Quoted(&w.topic));
        l.field("qos", w.qos as u8);
        l.field("retain", w.retain);
        l.field("payload", Preview(&w.payload));
        l.properties(will_props(&w.properties));
        write!(f, "{{{}}}", l.0.trim_start())
    }
}

/// A property value as text.
trait Show {
    fn show(&self, out: &mut String);
}

macro_rules! show_display {
    ($($t:ty),*) => {$(
        impl Show for $t {
            fn show(&self, out: &mut String) {
                let _ = write!(out, "{self}");
            }
        }
    )*};
}

show_display!(bool, u16, u32, NonZeroU16, NonZeroU32);

impl Show for QoS {
    fn show(&self, out: &mut String) {
        let _ = write!(out, "{}", *self as u8);
    }
}

impl Show for SubscriptionId {
    fn show(&self, out: &mut String) {
        let _ = write!(out, "{}", self.get());
    }
}

impl Show for MqttString {
    fn show(&self, out: &mut String) {
        let _ = write!(out, "{}", Quoted(self));
    }
}

impl Show for TopicName {
    fn show(&self, out: &mut String) {
        let _ = write!(out, "{}", Quoted(self));
    }
}

impl Show for Bytes {
    fn show(&self, out: &mut String) {
        let _ = write!(out, "{}", Preview(self));
    }
}

impl Show for UserProperty {
    fn show(&self, out: &mut String) {
        let _ = write!(out, "({}, {})", Quoted(&self.0), Quoted(&self.1));
    }
}

/// The properties that are present, as `name=value` separated by spaces.
#[derive(Default)]
struct Props(String);

impl Props {
    fn one<T: Show>(&mut self, name: &str, value: &Option<T>) -> &mut Self {
        if let Some(v) = value {
            self.push(name, v);
        }
        self
    }

    fn each<T: Show>(&mut self, name: &str, values: &[T]) -> &mut Self {
        for v in values {
            self.push(name, v);
        }
        self
    }

    fn push(&mut self, name: &str, value: &impl Show) {
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        self.0.push_str(name);
        self.0.push('=');
        value.show(&mut self.0);
    }

    fn done(&mut self) -> Props {
        std::mem::take(self)
    }
}

// Each struct is taken apart field by field (no `..`), so that a property added to the
// codec fails to compile here until it is shown.

fn connect_props(p: &ConnectProperties) -> Props {
    let ConnectProperties {
        session_expiry_interval,
        receive_maximum,
        maximum_packet_size,
        topic_alias_maximum,
        request_response_information,
        request_problem_information,
        authentication_method,
        authentication_data,
        user_properties,
    } = p;
    Props::default()
        .one("session_expiry_interval", session_expiry_interval)
        .one("receive_maximum", receive_maximum)
        .one("maximum_packet_size", maximum_packet_size)
        .one("topic_alias_maximum", topic_alias_maximum)
        .one("request_response_information", request_response_information)
        .one("request_problem_information", request_problem_information)
        .one("authentication_method", authentication_method)
        .one("authentication_data", authentication_data)
        .each("user_property", user_properties)
        .done()
}

fn will_props(p: &WillProperties) -> Props {
    let WillProperties {
        will_delay_interval,
        payload_format_indicator,
        message_expiry_interval,
        content_type,
        response_topic,
        correlation_data,
        user_properties,
    } = p;
    Props::default()
        .one("will_delay_interval", will_delay_interval)
        .one("payload_format_indicator", payload_format_indicator)
        .one("message_expiry_interval", message_expiry_interval)
        .one("content_type", content_type)
        .one("response_topic", response_topic)
        .one("correlation_data", correlation_data)
        .each("user_property", user_properties)
        .done()
}

fn connack_props(p: &ConnAckProperties) -> Props {
    let ConnAckProperties {
        session_expiry_interval,
        receive_maximum,
        maximum_qos,
        retain_available,
        maximum_packet_size,
        assigned_client_identifier,
        topic_alias_maximum,
        reason_string,
        wildcard_subscription_available,
        subscription_identifiers_available,
        shared_subscription_available,
        server_keep_alive,
        response_information,
        server_reference,
        authentication_method,
        authentication_data,
        user_properties,
    } = p;
    Props::default()
        .one("session_expiry_interval", session_expiry_interval)
        .one("receive_maximum", receive_maximum)
        .one("maximum_qos", maximum_qos)
        .one("retain_available", retain_available)
        .one("maximum_packet_size", maximum_packet_size)
        .one("assigned_client_identifier", assigned_client_identifier)
        .one("topic_alias_maximum", topic_alias_maximum)
        .one("reason_string", reason_string)
        .one(
            "wildcard_subscription_available",
            wildcard_subscription_available,
        )
        .one(
            "subscription_identifiers_available",
            subscription_identifiers_available,
        )
        .one(
            "shared_subscription_available",
            shared_subscription_available,
        )
        .one("server_keep_alive", server_keep_alive)
        .one("response_information", response_information)
        .one("server_reference", server_reference)
        .one("authentication_method", authentication_method)
        .one("authentication_data", authentication_data)
        .each("user_property", user_properties)
        .done()
}

fn publish_props(p: &PublishProperties) -> Props {
    let PublishProperties {
        payload_format_indicator,
        message_expiry_interval,
        topic_alias,
        response_topic,
        correlation_data,
        content_type,
        user_properties,
        subscription_identifiers,
    } = p;
    Props::default()
        .one("payload_format_indicator", payload_format_indicator)
        .one("message_expiry_interval", message_expiry_interval)
        .one("topic_alias", topic_alias)
        .one("response_topic", response_topic)
        .one("correlation_data", correlation_data)
        .one("content_type", content_type)
        .each("user_property", user_properties)
        .each("subscription_identifier", subscription_identifiers)
        .done()
}

fn ack_props(p: &AckProperties) -> Props {
    let AckProperties {
        reason_string,
        user_properties,
    } = p;
    Props::default()
        .one("reason_string", reason_string)
        .each("user_property", user_properties)
        .done()
}

fn subscribe_props(p: &SubscribeProperties) -> Props {
    let SubscribeProperties {
        subscription_identifier,
        user_properties,
    } = p;
    Props::default()
        .one("subscription_identifier", subscription_identifier)
        .each("user_property", user_properties)
        .done()
}

fn unsubscribe_props(p: &UnsubscribeProperties) -> Props {
    let UnsubscribeProperties { user_properties } = p;
    Props::default()
        .each("user_property", user_properties)
        .done()
}

fn disconnect_props(p: &DisconnectProperties) -> Props {
    let DisconnectProperties {
        session_expiry_interval,
        reason_string,
        server_reference,
        user_properties,
    } = p;
    Props::default()
        .one("session_expiry_interval", session_expiry_interval)
        .one("reason_string", reason_string)
        .one("server_reference", server_reference)
        .each("user_property", user_properties)
        .done()
}

fn auth_props(p: &AuthProperties) -> Props {
    let AuthProperties {
        authentication_method,
        authentication_data,
        reason_string,
        user_properties,
    } = p;
    Props::default()
        .one("authentication_method", authentication_method)
        .one("authentication_data", authentication_data)
        .one("reason_string", reason_string)
        .each("user_property", user_properties)
        .done()
}
