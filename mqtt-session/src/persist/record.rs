//! The byte layout of stored records: fixed-width big-endian integers, and packets encoded
//! as MQTT 5.0 packets by the codec (so every field and property survives as it came).

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use mqtt_codec::{
    Bytes, BytesMut, Connect, DecodeContext, MAX_PACKET_SIZE, MqttString, Packet, PacketId,
    ProtocolVersion, Publish, Subscribe, SubscribeProperties, SubscriptionId, SubscriptionOptions,
    TopicFilter, Will,
};

/// A record that could not be read back: what was wrong with it.
#[derive(Debug)]
pub(super) struct Damaged(pub(super) String);

impl Damaged {
    fn new(what: impl Into<String>) -> Self {
        Self(what.into())
    }
}

/// Appends fields to a record.
#[derive(Default)]
pub(super) struct Writer(pub(super) Vec<u8>);

impl Writer {
    pub(super) fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    pub(super) fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub(super) fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// A length-prefixed byte string.
    pub(super) fn bytes(&mut self, v: &[u8]) -> &mut Self {
        // Every stored string and packet is below 2^28 bytes (the MQTT maximum).
        self.u32(v.len() as u32);
        self.0.extend_from_slice(v);
        self
    }
    /// A packet, as the codec encodes it for MQTT 5.0, to the end of the record.
    pub(super) fn packet(&mut self, p: &Packet) -> Result<&mut Self, Damaged> {
        let mut buf = BytesMut::new();
        p.encode(ProtocolVersion::V5, &mut buf)
            .map_err(|e| Damaged::new(e.to_string()))?;
        self.0.extend_from_slice(&buf);
        Ok(self)
    }
}

/// Reads fields off a record, each read failing on a short record.
pub(super) struct Reader<'a>(pub(super) &'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Damaged> {
        if self.0.len() < n {
            return Err(Damaged::new("record too short"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    pub(super) fn u8(&mut self) -> Result<u8, Damaged> {
        Ok(self.take(1)?[0])
    }
    pub(super) fn u32(&mut self) -> Result<u32, Damaged> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub(super) fn u64(&mut self) -> Result<u64, Damaged> {
        let b = self.take(8)?;
        let mut a = [0; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    pub(super) fn bytes(&mut self) -> Result<&'a [u8], Damaged> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    /// The packet that fills the rest of the record.
    pub(super) fn packet(&mut self) -> Result<Packet, Damaged> {
        let rest = core::mem::take(&mut self.0);
        let mut cx = DecodeContext::new(ProtocolVersion::V5);
        cx.max_packet_size = MAX_PACKET_SIZE;
        Packet::decode_exact(Bytes::copy_from_slice(rest), &cx)
            .map_err(|e| Damaged::new(e.to_string()))
    }
    /// The PUBLISH that fills the rest of the record.
    pub(super) fn publish(&mut self) -> Result<Publish, Damaged> {
        match self.packet()? {
            Packet::Publish(p) => Ok(p),
            other => Err(Damaged::new(alloc::format!(
                "a {:?} where a PUBLISH was stored",
                other.packet_type()
            ))),
        }
    }
    pub(super) fn string(&mut self) -> Result<MqttString, Damaged> {
        let b = self.bytes()?;
        let s = core::str::from_utf8(b).map_err(|e| Damaged::new(e.to_string()))?;
        MqttString::new(s.to_string()).map_err(|e| Damaged::new(e.to_string()))
    }
}

/// A will, stored as the CONNECT that would carry it.
pub(super) fn will_record(will: &Will) -> Result<Vec<u8>, Damaged> {
    let mut c = Connect::new(ProtocolVersion::V5, MqttString::empty());
    c.will = Some(will.clone());
    let mut w = Writer::default();
    w.packet(&Packet::Connect(alloc::boxed::Box::new(c)))?;
    Ok(w.0)
}

pub(super) fn read_will(record: &[u8]) -> Result<Will, Damaged> {
    match Reader(record).packet()? {
        Packet::Connect(c) => c
            .will
            .ok_or_else(|| Damaged::new("a CONNECT without a will")),
        _ => Err(Damaged::new("not a CONNECT")),
    }
}

/// A subscription, stored as the SUBSCRIBE that would make it.
pub(super) fn subscription_record(
    filter: &TopicFilter,
    options: SubscriptionOptions,
    id: Option<SubscriptionId>,
) -> Result<Vec<u8>, Damaged> {
    let id1 = PacketId::new(1).ok_or_else(|| Damaged::new("packet identifier 1"))?;
    let mut s = Subscribe::new(id1, alloc::vec![(filter.clone(), options)]);
    s.properties = SubscribeProperties {
        subscription_identifier: id,
        ..SubscribeProperties::default()
    };
    let mut w = Writer::default();
    w.packet(&Packet::Subscribe(s))?;
    Ok(w.0)
}

pub(super) fn read_subscription(
    record: &[u8],
) -> Result<(TopicFilter, SubscriptionOptions, Option<SubscriptionId>), Damaged> {
    match Reader(record).packet()? {
        Packet::Subscribe(mut s) if s.filters.len() == 1 => {
            let (f, o) = s.filters.remove(0);
            Ok((f, o, s.properties.subscription_identifier))
        }
        _ => Err(Damaged::new("not a SUBSCRIBE of one filter")),
    }
}
