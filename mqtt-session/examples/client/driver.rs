//! A tokio driver for the sans-IO client: one TCP connection, the client's actions carried
//! out in order, its timers turned into sleeps. Persist actions go to a `MemorySessionStore`,
//! or with `--session-file` to a `ClientStore` on disk, committed before the packets that
//! follow them are written.

use std::collections::VecDeque;
use std::io;
use std::sync::OnceLock;

use mqtt_codec::BytesMut;
use mqtt_session::client::{Action, Client, Event};
use mqtt_session::persist::ClientStore;
use mqtt_session::store::{MemorySessionStore, SessionOp};
use mqtt_session::time::{Clock, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The driver is the one place that reads the clock.
fn clock() -> &'static Clock {
    static CLOCK: OnceLock<Clock> = OnceLock::new();
    CLOCK.get_or_init(Clock::new)
}

/// The current time, for the client.
pub fn now() -> Instant {
    clock().now()
}

/// Where the session's write-ahead operations go.
pub enum Store {
    /// Nowhere durable: the session ends with the process.
    Memory(MemorySessionStore),
    /// A session file (boxed: the database handle is large).
    File(Box<ClientStore>),
}

impl Store {
    fn apply(&mut self, op: &SessionOp) -> io::Result<()> {
        match self {
            Self::Memory(m) => {
                m.apply(op);
                Ok(())
            }
            Self::File(f) => f.apply(op).map_err(io::Error::other),
        }
    }

    /// Makes what was applied durable: before anything that depends on it is written.
    fn commit(&mut self) -> io::Result<()> {
        match self {
            Self::Memory(_) => Ok(()),
            Self::File(f) => f.commit().map_err(io::Error::other),
        }
    }
}

/// A client session running over one TCP connection.
pub struct Driver {
    client: Client,
    stream: TcpStream,
    rx: BytesMut,
    tx: BytesMut,
    events: VecDeque<Event>,
    closed: bool,
    /// What the client asked to persist.
    pub store: Store,
}

impl Driver {
    /// Opens a TCP connection to `addr` and sends the client's CONNECT.
    #[allow(dead_code)] // used by the integration tests
    pub async fn connect(addr: &str, client: Client) -> io::Result<Self> {
        Self::connect_with(addr, client, Store::Memory(MemorySessionStore::new())).await
    }

    /// [`Driver::connect`], with the session's operations going to `store`.
    pub async fn connect_with(addr: &str, mut client: Client, store: Store) -> io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        client
            .connect(now())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut d = Self {
            client,
            stream,
            rx: BytesMut::with_capacity(8 * 1024),
            tx: BytesMut::new(),
            events: VecDeque::new(),
            closed: false,
            store,
        };
        d.flush().await?;
        Ok(d)
    }

    /// The client, for commands. Call [`Driver::flush`] (or `next_event`) after a command.
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// Gives the session back (to reconnect it on a new transport).
    #[allow(dead_code)] // used by the integration tests
    pub fn into_client(self) -> Client {
        self.client
    }

    /// Gives the session and its store back (to reconnect on a new transport).
    #[allow(dead_code)] // used by the command line
    pub fn into_parts(self) -> (Client, Store) {
        (self.client, self.store)
    }

    /// Closes the TCP connection without DISCONNECT, as a crash would: the server
    /// publishes the will. Returns the session.
    #[allow(dead_code)] // used by the integration tests
    pub fn abort(mut self) -> Client {
        self.client.handle_closed(now());
        // The only action now is the event saying the transport closed, which the caller
        // knows; store operations would still be applied.
        while let Some(a) = self.client.poll_action() {
            if let Action::Persist(op) = a {
                let _ = self.store.apply(&op);
            }
        }
        let _ = self.store.commit();
        // Dropping the stream resets the connection.
        self.client
    }

    /// Carries out every action the client has: writes packets, applies store operations,
    /// queues events, closes on Close.
    pub async fn flush(&mut self) -> io::Result<()> {
        let version = self.client.protocol();
        while let Some(action) = self.client.poll_action() {
            match action {
                Action::Send(p) => p
                    .encode(version, &mut self.tx)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?,
                Action::Persist(op) => self.store.apply(&op)?,
                Action::Event(e) => self.events.push_back(e),
                Action::Close => {
                    self.store.commit()?;
                    self.write_out().await?;
                    let _ = self.stream.shutdown().await;
                    self.closed = true;
                }
            }
        }
        // Write-ahead: what was stored is committed before the packets that follow it go.
        self.store.commit()?;
        self.write_out().await
    }

    async fn write_out(&mut self) -> io::Result<()> {
        if !self.tx.is_empty() && !self.closed {
            self.stream.write_all(&self.tx).await?;
            self.tx.clear();
        }
        Ok(())
    }

    /// Runs the connection until the client has an event for the application; `None` once
    /// the connection is over and every event was taken.
    pub async fn next_event(&mut self) -> io::Result<Option<Event>> {
        loop {
            self.flush().await?;
            if let Some(e) = self.events.pop_front() {
                return Ok(Some(e));
            }
            if self.closed {
                return Ok(None);
            }
            let deadline = self.client.poll_timeout();
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(clock().to_std(at).into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                read = self.stream.read_buf(&mut self.rx) => {
                    match read {
                        Ok(0) | Err(_) => {
                            self.client.handle_closed(now());
                            self.closed = true;
                        }
                        Ok(_) => self.decode(),
                    }
                }
                () = sleep => self.client.handle_timeout(now()),
            }
        }
    }

    fn decode(&mut self) {
        loop {
            // The client decodes: it knows the version of this connection, and reads a
            // 3.1.1 server's refusal of a 5.0 CONNECT as such.
            match self.client.decode(&mut self.rx) {
                Ok(Some(p)) => self.client.handle_packet(now(), p),
                Ok(None) => return,
                Err(e) => {
                    self.client.handle_decode_error(now(), &e);
                    self.rx.clear();
                    return;
                }
            }
        }
    }
}
