//! Transports: TCP, TLS and WebSocket listeners, and the task that runs one connection.
//!
//! A connection task decodes what arrives and hands each packet to the broker core; it
//! encodes and writes what the core sends back; it ends when either side closes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::{SinkExt, StreamExt};
use mqtt_codec::{BytesMut, DecodeContext, DecodeError, Packet, ProtocolVersion};
use mqtt_session::broker::ConnectionId;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// What a connection task (or, for `Shutdown`, `main`) hands the broker core.
#[derive(Debug)]
pub enum Input {
    Opened {
        conn: ConnectionId,
        peer: SocketAddr,
        out: mpsc::Sender<Output>,
    },
    Packet(ConnectionId, Packet),
    DecodeError(ConnectionId, DecodeError),
    Closed(ConnectionId),
    Shutdown,
}

/// What the broker core tells a connection task. Dropping the sender closes the
/// connection once everything sent before is written.
#[derive(Debug)]
pub enum Output {
    Send(ProtocolVersion, Packet),
}

/// How many packets may wait to be written to one connection; a client that does not read
/// fast enough is disconnected.
pub const OUT_QUEUE: usize = 1024;

/// What every connection task needs.
#[derive(Clone)]
pub struct Shared {
    pub core: crate::hub::Core,
    pub max_packet_size: u32,
    pub next_id: Arc<AtomicU64>,
    /// Held by every task; the broker waits for all of them to drop it when shutting down.
    pub _alive: mpsc::Sender<()>,
}

impl Shared {
    fn conn_id(&self) -> ConnectionId {
        ConnectionId(self.next_id.fetch_add(1, Ordering::Relaxed))
    }
}

/// Which transport a listener speaks.
#[derive(Clone)]
pub enum Kind {
    Tcp,
    Tls(TlsAcceptor),
    WebSocket,
}

/// Accepts connections forever.
pub async fn listen(listener: TcpListener, kind: Kind, shared: Shared) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                warn!("accept failed: {e}");
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let shared = shared.clone();
        let kind = kind.clone();
        tokio::spawn(async move {
            match kind {
                Kind::Tcp => {
                    let (r, w) = tokio::io::split(tcp);
                    serve(StreamRx(r), StreamTx(w), peer, shared).await;
                }
                Kind::Tls(acceptor) => match timeout(acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => {
                        let (r, w) = tokio::io::split(tls);
                        serve(StreamRx(r), StreamTx(w), peer, shared).await;
                    }
                    Ok(Err(e)) => debug!("TLS handshake with {peer} failed: {e}"),
                    Err(_) => debug!("TLS handshake with {peer} timed out"),
                },
                Kind::WebSocket => {
                    let handshake =
                        tokio_tungstenite::accept_hdr_async(tcp, choose_mqtt_subprotocol);
                    match timeout(handshake).await {
                        Ok(Ok(ws)) => {
                            let (w, r) = ws.split();
                            serve(WsRx(r), WsTx(w), peer, shared).await;
                        }
                        Ok(Err(e)) => debug!("WebSocket handshake with {peer} failed: {e}"),
                        Err(_) => debug!("WebSocket handshake with {peer} timed out"),
                    }
                }
            }
        });
    }
}

/// A TLS or WebSocket handshake gets as long as the broker gives a CONNECT.
async fn timeout<F: std::future::Future>(f: F) -> Result<F::Output, tokio::time::error::Elapsed> {
    tokio::time::timeout(std::time::Duration::from_secs(10), f).await
}

/// [MQTT-6.0.0-3], [MQTT-6.0.0-4]: the client offers `mqtt` and the server selects it.
#[allow(clippy::result_large_err)] // the signature tungstenite asks for
fn choose_mqtt_subprotocol(req: &Request, mut resp: Response) -> Result<Response, ErrorResponse> {
    let offered = req
        .headers()
        .get_all("Sec-WebSocket-Protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case("mqtt"));
    if offered {
        resp.headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("mqtt"));
    }
    Ok(resp)
}

/// The reading half of a transport: appends what arrives to `buf`; 0 at the end.
trait Rx {
    async fn read_into(&mut self, buf: &mut BytesMut) -> std::io::Result<usize>;
}

/// The writing half of a transport.
trait Tx {
    async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()>;
    async fn close(&mut self);
}

struct StreamRx<R>(R);
struct StreamTx<W>(W);

impl<R: AsyncRead + Unpin> Rx for StreamRx<R> {
    async fn read_into(&mut self, buf: &mut BytesMut) -> std::io::Result<usize> {
        self.0.read_buf(buf).await
    }
}

impl<W: AsyncWrite + Unpin> Tx for StreamTx<W> {
    async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.0.write_all(bytes).await?;
        self.0.flush().await
    }
    async fn close(&mut self) {
        let _ = self.0.shutdown().await;
    }
}

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;
struct WsRx(futures_util::stream::SplitStream<Ws>);
struct WsTx(futures_util::stream::SplitSink<Ws, Message>);

fn io_error(e: impl std::error::Error + Send + Sync + 'static) -> std::io::Error {
    std::io::Error::other(e)
}

impl Rx for WsRx {
    async fn read_into(&mut self, buf: &mut BytesMut) -> std::io::Result<usize> {
        loop {
            match self.0.next().await {
                None | Some(Ok(Message::Close(_))) => return Ok(0),
                Some(Err(e)) => return Err(io_error(e)),
                // [MQTT-6.0.0-2] packets may span frames: the bytes go to one buffer.
                Some(Ok(Message::Binary(b))) if !b.is_empty() => {
                    buf.extend_from_slice(&b);
                    return Ok(b.len());
                }
                // [MQTT-6.0.0-1] MQTT travels in binary frames only.
                Some(Ok(Message::Text(_))) => {
                    return Err(std::io::Error::other("text frame on an MQTT WebSocket"));
                }
                Some(Ok(_)) => {}
            }
        }
    }
}

impl Tx for WsTx {
    async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let msg = Message::Binary(bytes.to_vec().into());
        self.0.send(msg).await.map_err(io_error)
    }
    async fn close(&mut self) {
        let _ = self.0.close().await;
    }
}

/// Runs one connection until either side closes it.
async fn serve(mut rx: impl Rx, mut tx: impl Tx, peer: SocketAddr, shared: Shared) {
    let conn = shared.conn_id();
    let (out_tx, mut out) = mpsc::channel(OUT_QUEUE);
    let opened = Input::Opened {
        conn,
        peer,
        out: out_tx,
    };
    if shared.core.input(opened).is_err() {
        return;
    }
    let mut cx = DecodeContext::awaiting_connect().with_max_packet_size(shared.max_packet_size);
    let mut inbuf = BytesMut::with_capacity(4096);
    let mut outbuf = BytesMut::with_capacity(4096);
    let mut reading = true;
    loop {
        tokio::select! {
            r = rx.read_into(&mut inbuf), if reading => {
                match r {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                loop {
                    match Packet::decode(&mut inbuf, &cx) {
                        Ok(Some(p)) => {
                            if let Packet::Connect(c) = &p {
                                cx.version = Some(c.protocol);
                            }
                            if shared.core.input(Input::Packet(conn, p)).is_err() {
                                return;
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            // Nothing more is read; the broker answers and closes.
                            reading = false;
                            let _ = shared.core.input(Input::DecodeError(conn, e));
                            break;
                        }
                    }
                }
            }
            o = out.recv() => {
                let Some(Output::Send(version, packet)) = o else {
                    // The broker closed the connection; what it sent before is written.
                    tx.close().await;
                    break;
                };
                outbuf.clear();
                encode(&mut outbuf, version, &packet);
                // Write whatever else is ready in the same go.
                while outbuf.len() < 64 * 1024 {
                    match out.try_recv() {
                        Ok(Output::Send(v, p)) => encode(&mut outbuf, v, &p),
                        Err(_) => break,
                    }
                }
                if tx.write(&outbuf).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = shared.core.input(Input::Closed(conn));
}

fn encode(buf: &mut BytesMut, version: ProtocolVersion, packet: &Packet) {
    if let Err(e) = packet.encode(version, buf) {
        // The broker only hands out packets that fit the version; this would be its bug.
        error!("could not encode {:?}: {e}", packet.packet_type());
    }
}
