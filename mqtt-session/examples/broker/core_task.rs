//! The task that owns the broker core: it feeds the core what the connection tasks report
//! and the deadlines that fall due, and carries out the core's actions.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use mqtt_codec::ReasonCode;
use mqtt_session::broker::{Action, Broker, ClientDisconnected, ConnectionId, Event};
use tokio::sync::mpsc;

use crate::net::{Input, Output};
use crate::users::Users;

/// A connection as the core task knows it.
struct Link {
    out: mpsc::Sender<Output>,
    peer: SocketAddr,
}

/// The broker task: feeds inputs and deadlines to the broker and carries out its actions.
pub async fn run_core(mut broker: Broker, users: Users, mut rx: mpsc::Receiver<Input>) {
    let mut links: HashMap<ConnectionId, Link> = HashMap::new();
    loop {
        let deadline = broker.poll_timeout().map(tokio::time::Instant::from_std);
        let input = tokio::select! {
            i = rx.recv() => i,
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)), if deadline.is_some() => {
                broker.handle_timeout(Instant::now());
                drain(&mut broker, &mut links, &users);
                continue;
            }
        };
        let now = Instant::now();
        match input {
            None => return,
            Some(Input::Opened { conn, peer, out }) => {
                debug!("{conn} connection from {peer}");
                links.insert(conn, Link { out, peer });
                broker.handle_opened(now, conn);
            }
            Some(Input::Packet(conn, p)) => broker.handle_packet(now, conn, p),
            Some(Input::DecodeError(conn, e)) => {
                debug!("{conn} sent a bad packet: {e}");
                broker.handle_decode_error(now, conn, &e);
            }
            Some(Input::Closed(conn)) => {
                links.remove(&conn);
                broker.handle_closed(now, conn);
            }
            Some(Input::Shutdown) => {
                broker.shutdown(now);
                drain(&mut broker, &mut links, &users);
                info!(
                    "{} sessions and {} retained messages held in memory are discarded",
                    broker.session_count(),
                    broker.retained_count()
                );
                return;
            }
        }
        drain(&mut broker, &mut links, &users);
    }
}

/// Carries out every action: sends, closes, logs, and answers pending CONNECTs.
fn drain(broker: &mut Broker, links: &mut HashMap<ConnectionId, Link>, users: &Users) {
    loop {
        let mut decisions = Vec::new();
        let mut slow = Vec::new();
        while let Some(action) = broker.poll_action() {
            match action {
                Action::Send {
                    connection,
                    version,
                    packet,
                } => {
                    // A task that has ended reports it (Input::Closed); a full queue means
                    // the client does not keep up.
                    if let Some(l) = links.get(&connection)
                        && let Err(mpsc::error::TrySendError::Full(_)) =
                            l.out.try_send(Output::Send(version, packet))
                    {
                        slow.push(connection);
                    }
                }
                // Dropping the sender lets the task write what is queued, then close.
                Action::Close(conn) => {
                    links.remove(&conn);
                }
                // This broker keeps its state in memory only.
                Action::Persist(_) => {}
                Action::Event(e) => {
                    if let Some(d) = log_event(&e, links, users) {
                        decisions.push(d);
                    }
                }
            }
        }
        if decisions.is_empty() && slow.is_empty() {
            return;
        }
        let now = Instant::now();
        for (conn, decision) in decisions {
            let _ = match decision {
                Ok(()) => broker.accept(now, conn, None),
                Err(rc) => broker.reject(now, conn, rc),
            };
        }
        for conn in slow {
            warn!("{conn} does not read fast enough: disconnecting it");
            let _ = broker.disconnect(now, conn, ReasonCode::QUOTA_EXCEEDED);
        }
    }
}

type Decision = (ConnectionId, Result<(), ReasonCode>);

/// Logs an event; for a CONNECT waiting for a decision, returns the decision.
fn log_event(e: &Event, links: &HashMap<ConnectionId, Link>, users: &Users) -> Option<Decision> {
    let peer = |c: &ConnectionId| {
        links
            .get(c)
            .map_or_else(|| "?".to_string(), |l| l.peer.to_string())
    };
    match e {
        Event::ConnectRequest(r) => {
            let d = users.decide(r);
            if let Err(rc) = d {
                info!(
                    "{} refused {:?} from {}: {rc}",
                    r.connection,
                    r.client_id.as_str(),
                    peer(&r.connection)
                );
            }
            return Some((r.connection, d));
        }
        Event::AuthRequest(r) => {
            return Some((r.connection, Err(ReasonCode::BAD_AUTHENTICATION_METHOD)));
        }
        Event::Connected(c) => info!(
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
        Event::Disconnected(ClientDisconnected {
            connection,
            client_id,
            disconnected: d,
        }) => {
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
        Event::SessionEnded { client_id, reason } => {
            debug!("session {:?} ended: {reason:?}", client_id.as_str());
        }
        Event::WillPublished { client_id, topic } => {
            info!("will of {:?} published to {topic}", client_id.as_str());
        }
        Event::MessageDropped {
            client_id,
            topic,
            reason,
        } => debug!(
            "message on {topic} for {:?} dropped: {reason:?}",
            client_id.as_str()
        ),
        Event::LimitReached {
            connection,
            client_id,
            limit,
        } => warn!(
            "{} client {:?}: limit {limit:?} reached",
            connection.map_or_else(|| "-".to_string(), |c| c.to_string()),
            client_id.as_ref().map_or("", |c| c.as_str())
        ),
        _ => debug!("{e:?}"),
    }
    None
}
