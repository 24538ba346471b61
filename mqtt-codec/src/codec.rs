//! Framing for tokio: [`MqttCodec`], a [`tokio_util::codec::Decoder`] and
//! [`Encoder`](tokio_util::codec::Encoder) of [`Packet`]s (feature `tokio-util`).

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use crate::{DecodeContext, DecodeError, Decoded, EncodeError, Packet, ProtocolVersion};

/// Frames [`Packet`]s on a byte stream, for `tokio_util::codec::Framed` and its halves.
///
/// Decoding is [`Packet::decode_stream`]: strict, zero-copy, and bounded by the maximum
/// packet size, which is checked from the fixed header before the body is buffered (the
/// codec reserves room only for a packet it will accept). Encoding is [`Packet::encode`]
/// for the connection's version.
///
/// A client knows its version from the start ([`MqttCodec::new`]). A server does not:
/// [`MqttCodec::server`] decodes only a CONNECT first ([MQTT-3.1.0-1]) and takes the
/// version from it, for both directions.
///
/// ```
/// use futures_util::{SinkExt, StreamExt};
/// use mqtt_codec::{MqttCodec, Packet, ProtocolVersion, Publish, TopicName};
/// use tokio_util::codec::{FramedRead, FramedWrite};
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let (client, server) = tokio::io::duplex(4096);
/// let mut tx = FramedWrite::new(client, MqttCodec::new(ProtocolVersion::V5));
/// let mut rx = FramedRead::new(server, MqttCodec::new(ProtocolVersion::V5));
/// let publish = Publish::new(TopicName::new("a/b")?, "hello");
/// tx.send(Packet::Publish(publish.clone())).await?;
/// assert_eq!(rx.next().await.transpose()?, Some(Packet::Publish(publish)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct MqttCodec {
    context: DecodeContext,
}

impl MqttCodec {
    /// A codec for a connection of `version` (a client's, or a server's once it knows),
    /// accepting packets up to the protocol's maximum size.
    pub fn new(version: ProtocolVersion) -> Self {
        Self {
            context: DecodeContext::new(version),
        }
    }

    /// A codec for a server's new connection: it decodes only a CONNECT until one has
    /// arrived, then uses that CONNECT's version both ways. Nothing can be encoded before.
    pub fn server() -> Self {
        Self {
            context: DecodeContext::awaiting_connect(),
        }
    }

    /// The largest packet accepted, fixed header included (the Maximum Packet Size this
    /// side announces); a larger one is refused from its fixed header.
    pub fn with_max_packet_size(mut self, bytes: u32) -> Self {
        self.context.max_packet_size = bytes;
        self
    }

    /// The connection's version, once known.
    pub fn version(&self) -> Option<ProtocolVersion> {
        self.context.version
    }

    /// Changes the connection's version (a client falling back to 3.1.1 on a new
    /// connection).
    pub fn set_version(&mut self, version: ProtocolVersion) {
        self.context.version = Some(version);
    }

    /// How packets are decoded.
    pub fn decode_context(&self) -> &DecodeContext {
        &self.context
    }
}

/// Why the codec failed: the stream, or a packet.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The bytes received are not a packet this side accepts (see
    /// [`DecodeError::reason_code`] for what to answer).
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A packet to send cannot be encoded for the connection's version.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// A server's codec was asked to encode before a CONNECT told it the version.
    #[error("no protocol version yet: a server encodes only after a CONNECT")]
    NoVersion,
    /// The stream failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Decoder for MqttCodec {
    type Item = Packet;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Packet>, CodecError> {
        match Packet::decode_stream(src, &self.context)? {
            Decoded::Packet(packet) => {
                if self.context.version.is_none()
                    && let Packet::Connect(c) = &packet
                {
                    self.context.version = Some(c.protocol);
                }
                Ok(Some(packet))
            }
            Decoded::Incomplete { needed } => {
                // Exact once the fixed header is in, and within the maximum packet size
                // (checked from that header), so the reservation is bounded.
                src.reserve(needed);
                Ok(None)
            }
        }
    }
}

impl Encoder<&Packet> for MqttCodec {
    type Error = CodecError;

    fn encode(&mut self, packet: &Packet, dst: &mut BytesMut) -> Result<(), CodecError> {
        let version = self.context.version.ok_or(CodecError::NoVersion)?;
        // Packet::encode measures and checks the packet before it writes, and `dst` grows
        // as needed: measuring here too would do that work twice.
        packet.encode(version, dst)?;
        Ok(())
    }
}

impl Encoder<Packet> for MqttCodec {
    type Error = CodecError;

    fn encode(&mut self, packet: Packet, dst: &mut BytesMut) -> Result<(), CodecError> {
        self.encode(&packet, dst)
    }
}
