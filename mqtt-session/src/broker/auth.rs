//! Authorisation: which client may publish to which topic and subscribe to which filter.
//!
//! Authentication (who may connect) is a pending decision the driver answers (see
//! [`ConnectPolicy`](super::ConnectPolicy)); authorisation is asked for every PUBLISH and
//! every subscription, so it is a synchronous hook the driver installs with
//! [`Hub::set_authorizer`](super::Hub::set_authorizer).

use mqtt_codec::{MqttString, TopicFilter, TopicName};

/// Who is asking, for an [`Authorizer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientInfo<'a> {
    /// The client identifier.
    pub client_id: &'a MqttString,
    /// The User Name its CONNECT carried (`None`: anonymous).
    pub username: Option<&'a MqttString>,
}

/// Decides what a connected client may do. Every method defaults to allowing it.
///
/// A refused PUBLISH is acknowledged with 0x87 Not authorized under v5 and dropped; under
/// 3.1.1, which cannot say so, it is acknowledged normally and dropped ([MQTT-3.3.5-2]). A
/// refused subscription gets 0x87 (3.1.1: 0x80 Failure) in the SUBACK. A will whose topic is
/// refused is not published. A message a subscriber may not receive is not delivered to
/// it (nor is a retained one), as if it had no matching subscription.
pub trait Authorizer: Send {
    /// May `client` publish to `topic`?
    fn may_publish(&self, client: &ClientInfo<'_>, topic: &TopicName) -> bool {
        let _ = (client, topic);
        true
    }

    /// May `client` subscribe to `filter` (as written, `$share/..` prefix included)?
    fn may_subscribe(&self, client: &ClientInfo<'_>, filter: &TopicFilter) -> bool {
        let _ = (client, filter);
        true
    }

    /// May `client`, a subscriber, receive a message published to `topic`? Asked for each
    /// delivery, and only if [`checks_receipt`](Self::checks_receipt) is true: a rule such as
    /// "this user reads only `users/alice/#`" holds even under a subscription to `#`.
    fn may_receive(&self, client: &ClientInfo<'_>, topic: &TopicName) -> bool {
        let _ = (client, topic);
        true
    }

    /// Whether [`may_receive`](Self::may_receive) can refuse anything. False (the default)
    /// spares the broker a call per delivery; an authoriser that implements `may_receive`
    /// returns true.
    fn checks_receipt(&self) -> bool {
        false
    }
}

/// Allows everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

impl Authorizer for AllowAll {}
