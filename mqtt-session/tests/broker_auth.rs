//! Authentication and authorisation in the broker program, with mosquitto's own files: a
//! password file written by `mosquitto_passwd` (both of its hash types), and an ACL file in
//! mosquitto's `acl_file` format, over real sockets on 127.0.0.1. `mosquitto_passwd` comes
//! with Debian's `mosquitto` package (CI installs it); without it the test fails and says so.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use mqtt_codec::*;
use mqtt_session::broker::BrokerConfig;
use mqtt_session::server::{Acl, Server, Throttle, Transport, Users, tls_acceptor};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const V5: ProtocolVersion = ProtocolVersion::V5;
const V311: ProtocolVersion = ProtocolVersion::V3_1_1;

/// Starts the broker with these credentials and ACL on a free loopback port.
async fn start(users: Users, acl: Option<Acl>) -> SocketAddr {
    start_listener_with(Transport::Tcp, users, acl).await
}

/// A byte stream a client can run over: TCP, or TLS over it.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// A client on a raw connection.
struct Client {
    stream: Box<dyn Io>,
    buf: BytesMut,
    version: ProtocolVersion,
    /// Payloads of messages that arrived while waiting for something else.
    inbox: Vec<String>,
}

impl Client {
    /// Connects and returns the client with its CONNACK.
    async fn connect(
        addr: SocketAddr,
        version: ProtocolVersion,
        id: &str,
        login: Option<(&str, &str)>,
    ) -> (Self, ConnAck) {
        let stream = TcpStream::connect(addr).await.unwrap();
        Self::over(Box::new(stream), version, id, login).await
    }

    /// Connects over `stream` and returns the client with its CONNACK.
    async fn over(
        stream: Box<dyn Io>,
        version: ProtocolVersion,
        id: &str,
        login: Option<(&str, &str)>,
    ) -> (Self, ConnAck) {
        let mut c = Self {
            stream,
            buf: BytesMut::new(),
            version,
            inbox: Vec::new(),
        };
        let mut k = Connect::new(version, MqttString::new(id.to_string()).unwrap());
        if let Some((user, password)) = login {
            k.username = Some(MqttString::new(user.to_string()).unwrap());
            k.password = Some(Bytes::copy_from_slice(password.as_bytes()));
        }
        c.send(Packet::Connect(Box::new(k))).await;
        match c.recv().await {
            Some(Packet::ConnAck(a)) => (c, *a),
            other => panic!("{id}: expected CONNACK, got {other:?}"),
        }
    }

    async fn send(&mut self, p: Packet) {
        let bytes = p.to_bytes(self.version).unwrap();
        self.stream.write_all(&bytes).await.unwrap();
    }

    async fn recv(&mut self) -> Option<Packet> {
        let cx = DecodeContext::new(self.version);
        loop {
            if let Some(p) = Packet::decode(&mut self.buf, &cx).unwrap() {
                return Some(p);
            }
            let read = self.stream.read_buf(&mut self.buf);
            match tokio::time::timeout(Duration::from_secs(5), read).await {
                Ok(Ok(0)) | Ok(Err(_)) => return None,
                Ok(Ok(_)) => {}
                Err(_) => panic!("no packet within 5 s"),
            }
        }
    }

    /// SUBSCRIBE one filter at QoS 1; the SUBACK's reason code.
    async fn subscribe(&mut self, filter: &str) -> ReasonCode {
        let f = TopicFilter::new(filter.to_string()).unwrap();
        let s = Subscribe::new(
            PacketId::new(1).unwrap(),
            vec![(f, SubscriptionOptions::qos(QoS::AtLeastOnce))],
        );
        self.send(Packet::Subscribe(s)).await;
        match self.recv().await {
            Some(Packet::SubAck(a)) => a.reason_codes[0],
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    /// PUBLISH at QoS 1; the PUBACK's reason code.
    async fn publish(&mut self, topic: &str, payload: &str) -> ReasonCode {
        let mut p = Publish::new(
            TopicName::new(topic.to_string()).unwrap(),
            payload.to_string(),
        );
        p.qos_pid = QosPid::AtLeastOnce(PacketId::new(7).unwrap());
        self.send(Packet::Publish(p)).await;
        loop {
            match self.recv().await {
                Some(Packet::PubAck(a)) => return a.reason_code,
                Some(Packet::Publish(p)) => self.take(p).await,
                other => panic!("expected PUBACK, got {other:?}"),
            }
        }
    }

    /// Keeps a message that arrived, acknowledging it.
    async fn take(&mut self, p: Publish) {
        if let Some(id) = p.qos_pid.packet_id() {
            self.send(Packet::PubAck(PubResponse::new(id))).await;
        }
        self.inbox
            .push(String::from_utf8_lossy(&p.payload).into_owned());
    }

    /// The payloads of the messages that arrived so far, in order (a PINGRESP marks the
    /// end of what the broker had sent).
    async fn received(&mut self) -> Vec<String> {
        self.send(Packet::PingReq).await;
        loop {
            match self.recv().await {
                Some(Packet::Publish(p)) => self.take(p).await,
                Some(Packet::PingResp) => return std::mem::take(&mut self.inbox),
                other => panic!("expected PUBLISH or PINGRESP, got {other:?}"),
            }
        }
    }
}

/// A scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mqtt-auth-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn mosquitto_passwd(args: &[&str]) {
    let out = Command::new("mosquitto_passwd")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("mosquitto_passwd is needed ({e}): apt-get install mosquitto"));
    assert!(out.status.success(), "mosquitto_passwd {args:?}: {out:?}");
}

/// A password file made by `mosquitto_passwd` works unchanged: PBKDF2-SHA512 (`$7$`, its
/// default) and SHA-512 (`$6$`) entries, one written by `mqtt-broker passwd`, and a plain-text
/// one. The right password connects; a wrong one, an empty one, an unknown user and an
/// anonymous client are refused, with 0x86 (3.1.1: return code 4) or 0x87 (return code 5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_password_files_work() {
    let dir = scratch("passwd");
    let file = dir.join("passwd");
    let f = file.to_str().unwrap();
    mosquitto_passwd(&["-c", "-b", "-H", "sha512-pbkdf2", f, "alice", "apple"]);
    mosquitto_passwd(&["-b", "-H", "sha512", f, "bob", "banana"]);
    Users::add_user(f, "carol", "cherry").unwrap();
    let mut text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("alice:$7$") && text.contains("bob:$6$") && text.contains("carol:$7$"));
    text.push_str("dave:durian\neve:\n");
    std::fs::write(&file, text).unwrap();

    let addr = start(Users::load(f).unwrap(), None).await;
    let refused = ReasonCode::BAD_USER_NAME_OR_PASSWORD;
    for version in [V5, V311] {
        for (user, good, bad) in [
            ("alice", "apple", "Apple"),
            ("bob", "banana", "banan"),
            ("carol", "cherry", "cherry "),
            ("dave", "durian", ""),
        ] {
            let (_, ack) = Client::connect(addr, version, user, Some((user, good))).await;
            assert_eq!(ack.reason_code, ReasonCode::SUCCESS, "{user} {version:?}");
            let (_, ack) = Client::connect(addr, version, user, Some((user, bad))).await;
            assert_eq!(ack.reason_code, refused, "{user} with {bad:?} {version:?}");
        }
        let (_, ack) = Client::connect(addr, version, "e", Some(("eve", ""))).await;
        assert_eq!(ack.reason_code, refused, "an empty password never matches");
        let (_, ack) = Client::connect(addr, version, "m", Some(("mallory", "apple"))).await;
        assert_eq!(ack.reason_code, refused, "an unknown user");
        let (_, ack) = Client::connect(addr, version, "anon", None).await;
        assert_eq!(ack.reason_code, ReasonCode::NOT_AUTHORIZED, "anonymous");
    }
    let _ = std::fs::remove_dir_all(dir);
}

const ACL: &str = "
# anonymous clients
topic read public/#

user alice
topic readwrite alice/#
topic deny alice/secret

user bob
topic write alice/inbox

# everyone
pattern write clients/%c/status
pattern read users/%u/#
";

/// An ACL file in mosquitto's format, through the core's authoriser: writes are checked
/// per PUBLISH (v5 PUBACK 0x87, 3.1.1 acknowledged and dropped), subscriptions refused when
/// nothing they cover may be read (v5 SUBACK 0x87, 3.1.1 0x80), and every delivery is
/// checked, so a subscription to `#` receives only what its client may read; `deny` wins;
/// `%c` and `%u` patterns apply per client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mosquitto_acl_file_is_enforced() {
    let acl = Acl::parse(ACL).unwrap();
    let addr = start(Users::any(), Some(acl)).await;
    let (mut alice, _) = Client::connect(addr, V5, "a1", Some(("alice", "x"))).await;
    let (mut bob, _) = Client::connect(addr, V5, "b1", Some(("bob", "x"))).await;
    let (mut anon, _) = Client::connect(addr, V5, "n1", None).await;
    let (mut anon3, _) = Client::connect(addr, V311, "n3", None).await;

    assert_eq!(alice.subscribe("#").await, ReasonCode::GRANTED_QOS_1);
    assert_eq!(bob.subscribe("#").await, ReasonCode::GRANTED_QOS_1);
    assert_eq!(anon.subscribe("public/#").await, ReasonCode::GRANTED_QOS_1);
    assert_eq!(anon.subscribe("alice/#").await, ReasonCode::NOT_AUTHORIZED);
    assert_eq!(
        anon3.subscribe("alice/#").await,
        ReasonCode::UNSPECIFIED_ERROR
    );

    // Writes: granted, denied by `deny`, by having no rule, and by patterns.
    assert_eq!(
        alice.publish("alice/notes", "n1").await,
        ReasonCode::SUCCESS
    );
    assert_eq!(
        alice.publish("alice/secret", "s1").await,
        ReasonCode::NOT_AUTHORIZED
    );
    assert_eq!(
        alice.publish("public/news", "p1").await,
        ReasonCode::NOT_AUTHORIZED
    );
    assert_eq!(bob.publish("alice/inbox", "i1").await, ReasonCode::SUCCESS);
    assert_eq!(
        bob.publish("clients/b1/status", "up").await,
        ReasonCode::NO_MATCHING_SUBSCRIBERS
    );
    assert_eq!(
        bob.publish("clients/a1/status", "x").await,
        ReasonCode::NOT_AUTHORIZED
    );
    assert_eq!(
        anon.publish("public/news", "p2").await,
        ReasonCode::NOT_AUTHORIZED
    );
    // 3.1.1 cannot be told: acknowledged, and dropped.
    assert_eq!(
        anon3.publish("public/news", "p3").await,
        ReasonCode::SUCCESS
    );
    assert_eq!(
        alice.publish("users/bob/mail", "m1").await,
        ReasonCode::NOT_AUTHORIZED
    );

    // Reads: each delivery checked against the reader's rules.
    assert_eq!(alice.received().await, ["n1", "i1"]);
    assert!(
        bob.received().await.is_empty(),
        "bob may read only users/bob/#"
    );
    assert!(anon.received().await.is_empty());
    assert!(anon3.received().await.is_empty());
}

/// Guessing is slow: after `failures_allowed` failed logins from one address, it is
/// refused with 0x9F for a pause, even with the right password, and the pause doubles
/// with each further failure; once it is over, the right password works and clears the
/// count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_make_an_address_pause() {
    let dir = scratch("backoff");
    let file = dir.join("passwd");
    let f = file.to_str().unwrap();
    Users::add_user(f, "alice", "apple").unwrap();
    let mut throttle = Throttle::default();
    throttle.failures_allowed = 3;
    throttle.first_pause = Duration::from_millis(600);
    let server = Server::new(BrokerConfig::default())
        .authenticator(Users::load(f).unwrap())
        .throttle(throttle);
    let addr = start_server(Transport::Tcp, server, None).await;
    let login = |pw: &'static str| async move {
        let (_, ack) = Client::connect(addr, V5, "g", Some(("alice", pw))).await;
        ack.reason_code
    };
    for _ in 0..3 {
        assert_eq!(login("guess").await, ReasonCode::BAD_USER_NAME_OR_PASSWORD);
    }
    assert_eq!(login("apple").await, ReasonCode::CONNECTION_RATE_EXCEEDED);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(login("guess").await, ReasonCode::BAD_USER_NAME_OR_PASSWORD);
    // The fourth failure doubles the pause: still refused after the first one's length.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(login("apple").await, ReasonCode::CONNECTION_RATE_EXCEEDED);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(login("apple").await, ReasonCode::SUCCESS);
    assert_eq!(login("guess").await, ReasonCode::BAD_USER_NAME_OR_PASSWORD);
    assert_eq!(
        login("apple").await,
        ReasonCode::SUCCESS,
        "a success cleared the count"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// A throwaway PKI: a CA, a server certificate for `localhost` and a client certificate,
/// both signed by it, as PEM.
struct Pki {
    ca: String,
    server: (String, String),
    client: (String, String),
}

fn pki() -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let leaf = |name: &str, purpose: ExtendedKeyUsagePurpose| {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec![name.to_string()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, name);
        p.extended_key_usages = vec![purpose];
        let cert = p.signed_by(&key, &ca_cert, &ca_key).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    Pki {
        ca: ca_cert.pem(),
        server: leaf("localhost", ExtendedKeyUsagePurpose::ServerAuth),
        client: leaf("device-1", ExtendedKeyUsagePurpose::ClientAuth),
    }
}

/// Starts the broker program's `kind` listener on a free loopback port, credentials open.
async fn start_listener(transport: Transport) -> SocketAddr {
    start_listener_with(transport, Users::any(), None).await
}

/// [`start_listener`] with credentials and an ACL.
async fn start_listener_with(transport: Transport, users: Users, acl: Option<Acl>) -> SocketAddr {
    start_server(
        transport,
        Server::new(BrokerConfig::default()).authenticator(users),
        acl,
    )
    .await
}

/// `server`, with `acl` if given, listening for `transport` on a free loopback port.
async fn start_server(transport: Transport, server: Server, acl: Option<Acl>) -> SocketAddr {
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut server = server.listener(tcp, transport);
    if let Some(acl) = acl {
        server = server.authorizer(acl);
    }
    server.start().await.unwrap().local_addrs()[0]
}

/// A TLS client trusting `pki`'s CA, presenting its client certificate if `with_cert`.
async fn tls_connect(
    addr: SocketAddr,
    pki: &Pki,
    with_cert: bool,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pki.ca.as_bytes()).unwrap())
        .unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = if with_cert {
        let chain = vec![CertificateDer::from_pem_slice(pki.client.0.as_bytes()).unwrap()];
        let key = PrivateKeyDer::from_pem_slice(pki.client.1.as_bytes()).unwrap();
        builder.with_client_auth_cert(chain, key).unwrap()
    } else {
        builder.with_no_client_auth()
    };
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = TcpStream::connect(addr).await?;
    connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

/// Sends a v5 CONNECT over `stream` and returns the CONNACK, or `None` if the broker
/// closed or refused the stream first.
async fn connack_over<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    stream: &mut S,
) -> Option<ConnAck> {
    let connect = Connect::new(V5, MqttString::from_static("tls"));
    let bytes = Packet::Connect(Box::new(connect)).to_bytes(V5).unwrap();
    stream.write_all(&bytes).await.ok()?;
    let mut buf = BytesMut::new();
    let cx = DecodeContext::new(V5);
    loop {
        if let Some(Packet::ConnAck(a)) = Packet::decode(&mut buf, &cx).ok()? {
            return Some(*a);
        }
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read_buf(&mut buf));
        match read.await {
            Ok(Ok(n)) if n > 0 => {}
            _ => return None,
        }
    }
}

/// Mutual TLS (`--cafile`): a client with a certificate from the CA connects; one without a
/// certificate gets no MQTT session at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_requires_a_client_certificate() {
    let pki = pki();
    let (cert, key) = &pki.server;
    let acceptor = tls_acceptor(cert.as_bytes(), key.as_bytes(), Some(pki.ca.as_bytes()));
    let addr = start_listener(Transport::Tls(acceptor.unwrap())).await;

    let mut s = tls_connect(addr, &pki, true).await.unwrap();
    let ack = connack_over(&mut s)
        .await
        .expect("a CONNACK for a certified client");
    assert_eq!(ack.reason_code, ReasonCode::SUCCESS);

    // TLS 1.3 may finish the client's side of the handshake before the server refuses it.
    match tls_connect(addr, &pki, false).await {
        Err(_) => {}
        Ok(mut s) => assert!(
            connack_over(&mut s).await.is_none(),
            "served without a certificate"
        ),
    }
}

/// MQTT over WebSocket over TLS (`--wss`): the `mqtt` subprotocol is selected and a v5
/// client connects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_over_secure_websocket() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::http::HeaderValue;

    let pki = pki();
    let (cert, key) = &pki.server;
    let acceptor = tls_acceptor(cert.as_bytes(), key.as_bytes(), None).unwrap();
    let addr = start_listener(Transport::SecureWebSocket(acceptor)).await;
    let tls = tls_connect(addr, &pki, false).await.unwrap();
    let mut req = "wss://localhost/mqtt".into_client_request().unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("mqtt"));
    let (mut ws, resp) = tokio_tungstenite::client_async(req, tls).await.unwrap();
    let protocol = resp.headers().get("Sec-WebSocket-Protocol");
    assert_eq!(protocol.and_then(|v| v.to_str().ok()), Some("mqtt"));
    let connect = Connect::new(V5, MqttString::from_static("wss"));
    let bytes = Packet::Connect(Box::new(connect)).to_bytes(V5).unwrap();
    ws.send(Message::Binary(bytes.to_vec().into()))
        .await
        .unwrap();
    let frame = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let Message::Binary(b) = frame else {
        panic!("expected a binary frame, got {frame:?}");
    };
    let cx = DecodeContext::new(V5);
    match Packet::decode_exact(Bytes::from(b.to_vec()), &cx).unwrap() {
        Packet::ConnAck(a) => assert_eq!(a.reason_code, ReasonCode::SUCCESS),
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

/// `--use-identity-as-username`: a client with a certificate is its Common Name, needs no
/// password, and cannot claim another user name: the ACL sees `device-1` although the
/// CONNECT said `admin`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_names_the_user() {
    let pki = pki();
    let (cert, key) = &pki.server;
    let acceptor = tls_acceptor(cert.as_bytes(), key.as_bytes(), Some(pki.ca.as_bytes()));
    let dir = scratch("identity");
    let file = dir.join("passwd");
    let f = file.to_str().unwrap();
    Users::add_user(f, "admin", "root-pw").unwrap();
    let users = Users::load(f).unwrap().use_identity_as_username(true);
    let acl = Acl::parse("pattern readwrite %u/#\nuser admin\ntopic readwrite #\n");
    let kind = Transport::Tls(acceptor.unwrap());
    let addr = start_listener_with(kind, users, Some(acl.unwrap())).await;

    let tls = tls_connect(addr, &pki, true).await.unwrap();
    let (mut c, ack) = Client::over(Box::new(tls), V5, "dev", Some(("admin", ""))).await;
    assert_eq!(ack.reason_code, ReasonCode::SUCCESS, "no password needed");
    assert_eq!(
        c.publish("admin/reboot", "now").await,
        ReasonCode::NOT_AUTHORIZED
    );
    let own = c.publish("device-1/temp", "21").await;
    assert_eq!(own, ReasonCode::NO_MATCHING_SUBSCRIBERS);
    let _ = std::fs::remove_dir_all(dir);
}

/// The broker program, which `cargo test` builds for the tests that need its feature.
fn example_broker() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mqtt-broker"))
}

/// Kills the broker process when the test ends, however it ends.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An operator's mosquitto.conf, with a password file made by `mosquitto_passwd` and an ACL
/// file, starts the broker program unchanged, and its permissions hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_broker_runs_a_mosquitto_conf() {
    let dir = scratch("conf-run");
    let (passwd, acl, conf) = (
        dir.join("passwd"),
        dir.join("acl"),
        dir.join("mosquitto.conf"),
    );
    mosquitto_passwd(&["-c", "-b", passwd.to_str().unwrap(), "alice", "apple"]);
    std::fs::write(&acl, "user alice\ntopic readwrite alice/#\n").unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\n\
             acl_file {}\nlog_type error\n",
            passwd.display(),
            acl.display()
        ),
    )
    .unwrap();
    let child = Command::new(example_broker())
        .args(["-c", conf.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _running = Running(child);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the broker did not listen"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, ack) = Client::connect(addr, V5, "n", None).await;
    assert_eq!(ack.reason_code, ReasonCode::NOT_AUTHORIZED, "anonymous");
    let (_, ack) = Client::connect(addr, V5, "w", Some(("alice", "pear"))).await;
    assert_eq!(ack.reason_code, ReasonCode::BAD_USER_NAME_OR_PASSWORD);
    let (mut alice, ack) = Client::connect(addr, V5, "a", Some(("alice", "apple"))).await;
    assert_eq!(ack.reason_code, ReasonCode::SUCCESS);
    let own = alice.publish("alice/x", "1").await;
    assert_eq!(own, ReasonCode::NO_MATCHING_SUBSCRIBERS);
    assert_eq!(
        alice.publish("bob/x", "2").await,
        ReasonCode::NOT_AUTHORIZED
    );
    let _ = std::fs::remove_dir_all(dir);
}
