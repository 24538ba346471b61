//! The session hub behind a lock. Each connection task runs its own `ServerConnection`
//! (decoding, the rules per stage, keep-alive, topic aliases, PINGREQ) and hands the hub
//! what it passes on, under the lock; the hub's actions are carried out before the lock is
//! let go:
//! packets for other connections go to their outboxes, pauses and resumes to their readers.
//! Writers report what they wrote, which is what lets the core send more (its write
//! budget). A timer task sleeps until the next deadline and is woken when it moves.
//!
//! A core task fed by a channel was measured against this with a load generator on
//! 127.0.0.1 (`tests/broker_peers/loadgen`): the lock delivered 10 to 45% more messages per
//! second, as a channel costs a hand-over between tasks for every packet.

// The crate is no_std underneath; this module has std.
use std::boxed::Box;
use std::format;
use std::string::{String, ToString};
use std::vec::Vec;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use mqtt_codec::{MqttString, ReasonCode};
use tokio::sync::Notify;
use tracing::{debug, info, warn};

use super::net::{Input, Outbox};
use super::persist::Persistence;
use super::stats::{Counts, Stats};
use super::users::Throttle;
use super::{Authenticator, Peer};
use crate::broker::{BrokerAction, BrokerEvent, ClientDisconnected, ConnectionId, Hub};
use crate::time::{Clock, Instant};

/// A connection as the core knows it: one per connection in a table, so kept small (the
/// TLS identity, needed once and by few, is kept aside).
struct Link {
    outbox: Arc<Outbox>,
    peer: SocketAddr,
    /// Its client is connected (counted in `Counts::connected`).
    connected: bool,
}

impl Drop for Link {
    /// A connection the core forgets is closed: its writer writes what is queued, then
    /// ends.
    fn drop(&mut self) {
        self.outbox.close();
    }
}

/// The core has shut down; no more input is taken.
#[derive(Debug)]
pub(crate) struct Stopped;

/// The broker core, shared by every connection task and the timer task.
#[derive(Clone)]
pub(crate) struct Core(Arc<Shared>);

struct Shared {
    state: Mutex<State>,
    /// Tells the timer task the next deadline moved (or the core stopped).
    wake: Notify,
}

struct State {
    broker: Hub,
    links: HashMap<ConnectionId, Link>,
    /// The Common Name of a TLS client certificate, until its connection's CONNECT is
    /// decided.
    identities: HashMap<ConnectionId, String>,
    /// Who may connect.
    auth: Auth,
    /// Messages dropped per client (logged when the count reaches 1, 10, 100, ...).
    drops: HashMap<MqttString, u64>,
    /// The deadline the timer task sleeps until.
    timer_at: Option<Instant>,
    /// The one place the broker's time comes from.
    clock: Clock,
    /// CONNECTs accepted for a client still connected elsewhere, waiting for that
    /// connection to hand over what it had received (see `Outbox::request_drain`).
    deferred: HashMap<ConnectionId, Vec<Decision>>,
    /// With `--persist`: the store, which what depends on a write waits for.
    persist: Option<Persistence>,
    /// Clients connected, refusals, drops and limits, for the statistics.
    counts: Counts,
    stopped: bool,
}

impl Core {
    pub(crate) fn new(broker: Hub, auth: Auth, clock: Clock, persist: Option<Persistence>) -> Self {
        Self(Arc::new(Shared {
            state: Mutex::new(State {
                broker,
                links: HashMap::new(),
                identities: HashMap::new(),
                auth,
                drops: HashMap::new(),
                timer_at: None,
                clock,
                deferred: HashMap::new(),
                persist,
                counts: Counts::default(),
                stopped: false,
            }),
            wake: Notify::new(),
        }))
    }

    /// Hands one input to the broker and carries out its actions.
    pub(crate) fn input(&self, input: Input) -> Result<(), Stopped> {
        let mut s = self.0.state.lock().map_err(|_| Stopped)?;
        if s.stopped {
            return Err(Stopped);
        }
        s.apply(input);
        let next = s.broker.poll_timeout();
        let wake = next != s.timer_at || s.stopped;
        s.timer_at = next;
        drop(s);
        if wake {
            self.0.wake.notify_one();
        }
        Ok(())
    }

    /// Commits what waits for the store and stops its thread (after `Input::Shutdown`).
    pub(crate) fn finish_persistence(&self) {
        let p = match self.0.state.lock() {
            Ok(mut s) => s.persist.take(),
            Err(_) => None,
        };
        if let Some(mut p) = p {
            p.finish();
            info!(
                "sessions and retained messages are kept in {}",
                p.dir().display()
            );
        }
    }

    /// Reads the broker's state (counts, limits) under the lock.
    pub(crate) fn inspect<R>(&self, f: impl FnOnce(&Hub) -> R) -> Option<R> {
        let s = self.0.state.lock().ok()?;
        Some(f(&s.broker))
    }

    /// The statistics kept under the lock, into `stats`.
    pub(crate) fn stats(&self, stats: &mut Stats) {
        let Ok(s) = self.0.state.lock() else { return };
        let c = &s.counts;
        stats.clients_connected = c.connected;
        stats.clients_maximum = c.max_connected;
        stats.sessions = s.broker.session_count() as u64;
        stats.subscriptions = s.broker.subscription_count() as u64;
        stats.retained_messages = s.broker.retained_count() as u64;
        stats.connects_refused = c.refused.clone();
        stats.messages_dropped = c
            .dropped
            .iter()
            .map(|(r, n)| (format!("{r:?}"), *n))
            .collect();
        stats.limits_reached = c
            .limits
            .iter()
            .map(|(l, n)| (format!("{l:?}"), *n))
            .collect();
    }

    /// Fires the broker's deadlines until it shuts down.
    pub(crate) async fn run_timer(self) {
        loop {
            let (at, stopped) = match self.0.state.lock() {
                Ok(s) => (s.timer_at.map(|at| s.clock.to_std(at)), s.stopped),
                Err(_) => return,
            };
            if stopped {
                return;
            }
            let Some(at) = at else {
                self.0.wake.notified().await;
                continue;
            };
            tokio::select! {
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(at)) => {
                    let Ok(mut s) = self.0.state.lock() else { return };
                    let now = s.clock.now();
                    s.broker.handle_timeout(now);
                    s.drain();
                    s.timer_at = s.broker.poll_timeout();
                }
                _ = self.0.wake.notified() => {}
            }
        }
    }
}

impl State {
    fn apply(&mut self, input: Input) {
        let now = self.clock.now();
        let broker = &mut self.broker;
        match input {
            Input::Opened {
                conn,
                peer,
                outbox,
                identity,
            } => {
                debug!("{conn} connection from {peer}");
                let link = Link {
                    outbox,
                    peer,
                    connected: false,
                };
                self.links.insert(conn, link);
                if let Some(identity) = identity {
                    self.identities.insert(conn, identity);
                }
                broker.handle_opened(now, conn);
            }
            Input::Packet(conn, p) => broker.handle_packet(now, conn, p),
            Input::Violation(conn, v) => {
                debug!("{conn} broke a rule: {v}");
                broker.handle_violation(now, conn, v);
            }
            Input::KeepAliveTimeout(conn) => broker.handle_keep_alive_timeout(now, conn),
            Input::Written(conn, n) => broker.handle_written(now, conn, n),
            Input::DecodeError(conn, e) => {
                debug!("{conn} sent a bad packet: {e}");
                broker.handle_decode_error(now, conn, &e);
            }
            Input::Closed(conn) => {
                forget(&mut self.links, &mut self.counts, conn);
                self.identities.remove(&conn);
                broker.handle_closed(now, conn);
                let ready = self.deferred.remove(&conn).unwrap_or_default();
                return self.drain_with(drained(ready));
            }
            Input::Drained(conn) => {
                let ready = self.deferred.remove(&conn).unwrap_or_default();
                return self.drain_with(drained(ready));
            }
            Input::Disconnect(conn, rc, why) => {
                info!("{conn} closed by the broker: {why}");
                let _ = broker.disconnect(now, conn, rc);
            }
            Input::Own(messages) => {
                for m in messages {
                    broker.publish_own(now, m, mqtt_codec::QoS::AtMostOnce);
                }
            }
            Input::Shutdown => {
                broker.shutdown(now);
                self.stopped = true;
                self.drain();
                if self.persist.is_none() {
                    info!(
                        "{} sessions and {} retained messages held in memory are discarded",
                        self.broker.session_count(),
                        self.broker.retained_count()
                    );
                }
                return;
            }
        }
        self.drain();
    }

    fn drain(&mut self) {
        self.drain_with(Vec::new());
    }

    /// [`drain`](Self::drain), with decisions that were waiting to be carried out.
    fn drain_with(&mut self, ready: Vec<Decision>) {
        drain(self, ready);
    }
}

/// Carries out every action: sends, closes, pauses and resumes, logs, and answers pending
/// CONNECTs.
fn drain(state: &mut State, ready: Vec<Decision>) {
    let State {
        broker,
        links,
        identities,
        auth,
        drops,
        counts,
        clock,
        deferred,
        persist,
        ..
    } = state;
    let mut decisions = ready;
    loop {
        while let Some(action) = broker.poll_action() {
            match action {
                // A task that has ended reports it (Input::Closed).
                BrokerAction::Send {
                    connection,
                    version,
                    packet,
                    len,
                } => {
                    if let Some(l) = links.get(&connection) {
                        match waits(persist) {
                            Some(p) => {
                                let outbox = l.outbox.clone();
                                p.defer(Box::new(move || outbox.send(version, packet, len)));
                            }
                            None => l.outbox.send(version, packet, len),
                        }
                    }
                }
                // Dropping the link lets the writer write what is queued, then close.
                BrokerAction::Close(conn) => {
                    identities.remove(&conn);
                    let link = forget(links, counts, conn);
                    if let (Some(link), Some(p)) = (link, waits(persist)) {
                        p.defer(Box::new(move || drop(link)));
                    }
                    decisions.extend(drained(deferred.remove(&conn).unwrap_or_default()));
                }
                BrokerAction::PauseReading(conn) | BrokerAction::ResumeReading(conn) => {
                    if let Some(l) = links.get(&conn) {
                        let pause = matches!(action, BrokerAction::PauseReading(_));
                        l.outbox.set_paused(pause);
                    }
                }
                // Without --persist, this broker keeps its state in memory only.
                BrokerAction::Persist(op) => {
                    if let Some(p) = persist {
                        p.op(op);
                    }
                }
                BrokerAction::Event(e) => {
                    count_event(&e, links, counts);
                    let now = clock.now();
                    if let Some(d) = log_event(&e, links, identities, auth, drops, counts, now) {
                        decisions.push(d);
                    }
                }
            }
        }
        if decisions.is_empty() {
            if let Some(p) = persist {
                p.flush();
            }
            return;
        }
        let now = clock.now();
        for d in std::mem::take(&mut decisions) {
            // A client still connected elsewhere: what that connection has received (a
            // DISCONNECT, say) is handled first, then this one takes over (or not). Once
            // drained, the decision goes ahead, the old connection still there or not.
            let old = broker
                .connection_of(d.client_id.as_str())
                .filter(|old| *old != d.conn && d.verdict.is_ok() && !d.drained);
            if let Some(old) = old
                && let Some(link) = links.get(&old)
            {
                link.outbox.request_drain();
                deferred.entry(old).or_default().push(d);
                continue;
            }
            let _ = match d.verdict {
                Ok(None) => broker.accept(now, d.conn, None),
                Ok(Some(name)) => broker.accept_as(now, d.conn, Some(name)),
                Err(rc) => broker.reject(now, d.conn, rc),
            };
        }
    }
}

/// Who may connect: the authenticator, behind the per-address throttle.
pub(crate) struct Auth {
    pub(crate) authenticator: Box<dyn Authenticator>,
    pub(crate) throttle: Throttle,
}

impl Auth {
    /// The decision for a CONNECT from `peer` at `now`, whose TLS certificate (if any)
    /// names `identity`: `Ok` to accept (`Some` user name: under that name), or the reason
    /// code refusing it. The source address's rate and past failures come first (0x9F),
    /// then the authenticator; the outcome counts for the address.
    fn decide(
        &mut self,
        r: &crate::broker::ConnectRequest,
        peer: SocketAddr,
        identity: Option<&str>,
        now: Instant,
    ) -> Result<Option<MqttString>, ReasonCode> {
        self.throttle.admit(peer.ip(), now)?;
        let who = Peer {
            addr: peer,
            certificate_name: identity,
        };
        let d = self.authenticator.authenticate(r, &who);
        self.throttle.outcome(peer.ip(), d.is_ok(), now);
        d
    }
}

/// Forgets a connection's link (which closes it), and counts its client out if it was
/// connected.
fn forget(
    links: &mut HashMap<ConnectionId, Link>,
    counts: &mut Counts,
    conn: ConnectionId,
) -> Option<Link> {
    let link = links.remove(&conn)?;
    if link.connected {
        counts.connected -= 1;
    }
    Some(link)
}

/// Counts what the statistics need of an event.
fn count_event(e: &BrokerEvent, links: &mut HashMap<ConnectionId, Link>, counts: &mut Counts) {
    match e {
        BrokerEvent::Connected(c) => {
            if let Some(link) = links.get_mut(&c.connection)
                && !link.connected
            {
                link.connected = true;
                counts.connected += 1;
                counts.max_connected = counts.max_connected.max(counts.connected);
            }
        }
        BrokerEvent::MessageDropped { reason, .. } => {
            counts.dropped(*reason);
        }
        BrokerEvent::LimitReached { limit, .. } => {
            *counts.limits.entry(*limit).or_default() += 1;
        }
        _ => {}
    }
}

/// The store, when what is sent now must wait for its commit (see persist.rs).
fn waits(p: &mut Option<Persistence>) -> Option<&mut Persistence> {
    p.as_mut().filter(|p| p.holds())
}

/// A CONNECT's answer: accept (under another user name, if given) or refuse.
struct Decision {
    conn: ConnectionId,
    /// The client identifier the CONNECT asked for (empty: one to be assigned).
    client_id: MqttString,
    verdict: Result<Option<MqttString>, ReasonCode>,
    /// It waited for the old connection of its client to hand over what it had received.
    drained: bool,
}

/// Decisions whose wait for a drain is over.
fn drained(mut ready: Vec<Decision>) -> Vec<Decision> {
    for d in &mut ready {
        d.drained = true;
    }
    ready
}

/// Logs an event; for a CONNECT waiting for a decision, returns the decision.
fn log_event(
    e: &BrokerEvent,
    links: &HashMap<ConnectionId, Link>,
    identities: &mut HashMap<ConnectionId, String>,
    auth: &mut Auth,
    drops: &mut HashMap<MqttString, u64>,
    counts: &mut Counts,
    now: Instant,
) -> Option<Decision> {
    let peer = |c: &ConnectionId| {
        links
            .get(c)
            .map_or_else(|| "?".to_string(), |l| l.peer.to_string())
    };
    match e {
        BrokerEvent::ConnectRequest(r) => {
            // Needed for this decision only.
            let identity = identities.remove(&r.connection);
            let d = match links.get(&r.connection) {
                Some(link) => auth.decide(r, link.peer, identity.as_deref(), now),
                // Closed in this same turn: the answer goes nowhere.
                None => Err(ReasonCode::UNSPECIFIED_ERROR),
            };
            if let Err(rc) = d {
                *counts.refused.entry(rc.0).or_default() += 1;
                info!(
                    "{} refused {:?} from {}: {rc}",
                    r.connection,
                    r.client_id.as_str(),
                    peer(&r.connection)
                );
            }
            return Some(Decision {
                conn: r.connection,
                client_id: r.client_id.clone(),
                verdict: d,
                drained: false,
            });
        }
        BrokerEvent::AuthRequest(r) => {
            return Some(Decision {
                conn: r.connection,
                client_id: MqttString::empty(),
                verdict: Err(ReasonCode::BAD_AUTHENTICATION_METHOD),
                drained: false,
            });
        }
        BrokerEvent::Connected(c) => info!(
            "{} client {:?} connected from {} (MQTT {}, keep-alive {}s{}{})",
            c.connection,
            c.client_id.as_str(),
            peer(&c.connection),
            c.protocol,
            c.keep_alive,
            if c.session_present {
                ", session resumed"
            } else {
                ""
            },
            c.username
                .as_ref()
                .map_or(String::new(), |u| format!(", user {u}")),
        ),
        BrokerEvent::Disconnected(c) => {
            let ClientDisconnected {
                connection,
                client_id,
                disconnected: d,
            } = &**c;
            let mut why = format!("{:?}", d.cause);
            if let Some(rc) = d.reason_code {
                why += &format!(" {rc}");
            }
            if let Some(rule) = d.rule {
                why += &format!(": {rule}");
            }
            info!(
                "{connection} client {:?} disconnected: {why}",
                client_id.as_ref().map_or("", |c| c.as_str())
            );
        }
        BrokerEvent::WillPublished { client_id, topic } => {
            info!("will of {:?} published to {topic}", client_id.as_str());
        }
        // Once per client at 1, 10, 100, ... drops, not once per message.
        BrokerEvent::MessageDropped {
            client_id,
            topic,
            reason,
        } => {
            let n = drops.entry(client_id.clone()).or_default();
            *n += 1;
            if n.checked_ilog10().is_some_and(|d| 10u64.pow(d) == *n) {
                warn!(
                    "{n} message(s) for {:?} dropped so far; the latest on {topic}: {reason:?}",
                    client_id.as_str()
                );
            }
        }
        BrokerEvent::SessionEnded { client_id, reason } => {
            drops.remove(client_id);
            debug!("session {:?} ended: {reason:?}", client_id.as_str());
        }
        BrokerEvent::LimitReached {
            connection,
            client_id,
            limit,
        } => warn!(
            "{} client {:?}: limit {limit:?} reached",
            connection.map_or_else(|| "-".to_string(), |c| c.to_string()),
            client_id.as_ref().map_or("", |c| c.as_str())
        ),
    }
    None
}
