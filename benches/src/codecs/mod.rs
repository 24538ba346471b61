//! [`Codec`](crate::Codec) for our codec and for each peer.
//!
//! Each peer is driven through the API its documentation shows for decoding from a
//! receive buffer and encoding into a send buffer, with the fastest public path where it
//! offers two. Where a peer has no stream decoder of its own, the few lines that split
//! frames off the buffer are here, marked as such, and count towards its time.

mod mqtt5_protocol;
mod mqtt_protocol_core;
mod mqttrs;
mod mqute;
mod ntex;
mod ours;
mod rumqttc;

pub use self::mqtt_protocol_core::{MqttProtocolCore, MqttProtocolCoreVectored};
pub use self::mqtt5_protocol::Mqtt5Protocol;
pub use self::mqttrs::Mqttrs;
pub use self::mqute::Mqute;
pub use self::ntex::NtexMqtt;
pub use self::ours::{Ours, OursBorrowed, OursVectored};
pub use self::rumqttc::Rumqttc;

use crate::Codec;

/// Something that does one thing with each codec type.
pub trait Visit {
    /// Called once per codec.
    fn visit<C: Codec>(&mut self);
}

/// Calls `v` with our codec first (owned, then the borrowing decoder), then each peer, for
/// contiguous encoding.
pub fn visit_all(v: &mut impl Visit) {
    v.visit::<Ours>();
    v.visit::<OursBorrowed>();
    v.visit::<Mqttrs>();
    v.visit::<Rumqttc>();
    v.visit::<NtexMqtt>();
    v.visit::<MqttProtocolCore>();
    v.visit::<Mqtt5Protocol>();
    v.visit::<Mqute>();
}

/// Calls `v` with the codecs that can encode a PUBLISH without copying its payload (the
/// header into a buffer, the payload by reference for a vectored write).
pub fn visit_vectored(v: &mut impl Visit) {
    v.visit::<OursVectored>();
    v.visit::<NtexMqtt>();
    v.visit::<MqttProtocolCoreVectored>();
}

/// The length of the packet at the start of `b` (fixed header included), for the peers
/// whose decoder does not say how much it consumed. `None` if `b` does not hold a whole
/// packet or its length is malformed.
#[inline]
pub(crate) fn frame_len(b: &[u8]) -> Option<usize> {
    let mut len: usize = 0;
    for i in 0..4 {
        let byte = *b.get(1 + i)?;
        len |= usize::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            let total = 2 + i + len;
            return (b.len() >= total).then_some(total);
        }
    }
    None
}
