//! The broker's store.

use alloc::string::ToString;
use alloc::vec::Vec;
use std::path::Path;
use std::time::SystemTime;

use mqtt_codec::{MqttString, Packet, QoS};
use redb::{ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use super::record::{self, Damaged, Reader, Writer};
use super::{File, META, Store, StoreError, millis, secs_between};
use crate::broker::{
    BrokerSnapshot, RetainedMessage, SessionSnapshot, StoreOp, StoredSubscription,
};
use crate::inflight::{OutgoingEntry, OutgoingState};
use crate::store::{SessionOp, SessionState};

/// Session records: Session Expiry Interval (u32), offline since (ms since the epoch, u64;
/// 0 while connected), then the user name if any (u8 flag, length-prefixed bytes).
const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");
/// (client id, filter as written) → the SUBSCRIBE that makes the subscription.
const SUBSCRIPTIONS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("subscriptions");
/// (client id, packet id) → sequence (u64), stored at (ms, u64), then 0 and the PUBLISH, or
/// 1 for a released QoS 2 message awaiting PUBCOMP.
const OUTGOING: TableDefinition<(&str, u16), &[u8]> = TableDefinition::new("outgoing");
/// (client id, packet id) of an incoming QoS 2 message awaiting PUBREL.
const INCOMING: TableDefinition<(&str, u16), ()> = TableDefinition::new("incoming");
/// Client id → the CONNECT that carries its will.
const WILLS: TableDefinition<&str, &[u8]> = TableDefinition::new("wills");
/// Topic → stored at (ms, u64), QoS (u8), then the PUBLISH.
const RETAINED: TableDefinition<&str, &[u8]> = TableDefinition::new("retained");

const SESSION_NEVER_EXPIRES: u32 = u32::MAX;

/// A crash-safe store of the broker's durable state: sessions that outlive their connection
/// (with subscriptions, messages towards their client, incoming QoS 2 identifiers and
/// wills) and retained messages. See the [module](super) for how to drive it.
#[derive(Debug)]
pub struct BrokerStore {
    store: Store,
}

impl BrokerStore {
    /// Opens the store in the file at `path`, creating it if there is none.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let file = File::open(path.as_ref(), "broker", |w| {
            w.open_table(SESSIONS)?;
            w.open_table(SUBSCRIPTIONS)?;
            w.open_table(OUTGOING)?;
            w.open_table(INCOMING)?;
            w.open_table(WILLS)?;
            w.open_table(RETAINED)?;
            Ok(())
        })?;
        Ok(Self {
            store: Store::new(file),
        })
    }

    /// Adds `op`, emitted at wall-clock time `now`, to the transaction in progress
    /// (beginning one if needed). It is durable once [`commit`](Self::commit) returns.
    ///
    /// After an error the transaction in progress is lost; the store holds what the last
    /// commit wrote, and a driver should stop rather than acknowledge anything more.
    pub fn apply(&mut self, op: &StoreOp, now: SystemTime) -> Result<(), StoreError> {
        self.store.apply(|f, txn| apply(f, txn, op, millis(now)))
    }

    /// Operations applied and not yet committed.
    pub fn pending(&self) -> usize {
        self.store.pending
    }

    /// Makes every operation applied so far durable, with one sync of the file, and notes
    /// `now` as the time of the last commit (a session connected at a crash is counted as
    /// disconnected from then). Does nothing when nothing is pending.
    pub fn commit(&mut self, now: SystemTime) -> Result<(), StoreError> {
        self.store.commit(|f, txn| {
            let mut meta = txn.open_table(META).map_err(|e| f.err(e))?;
            meta.insert("last_commit", millis(now).to_be_bytes().as_slice())
                .map_err(|e| f.err(e))?;
            Ok(())
        })
    }

    /// Records `now` as a moment the broker was running, with what is pending: a session
    /// connected when the broker stopped counts as disconnected from the last commit, so a
    /// driver that commits rarely calls this every few seconds to keep that close.
    pub fn heartbeat(&mut self, now: SystemTime) -> Result<(), StoreError> {
        self.store.begin()?;
        self.commit(now)
    }

    /// What was committed, as the snapshot to restore a hub from at wall-clock time `now`
    /// (see [`Hub::restore`](crate::broker::Hub::restore)).
    ///
    /// Intervals are what is left of them: a session's expiry and its will's delay count
    /// from when it lost its connection (for one connected when the broker stopped, from
    /// the last commit), a message's expiry from when it was stored. A message whose
    /// expiry passed is left out; a session whose expiry passed expires one second after
    /// the restore (its will, if any, is then published). Every stored message is marked
    /// as sent, since it may have reached its client: it goes again with DUP set.
    pub fn snapshot(&self, now: SystemTime) -> Result<BrokerSnapshot, StoreError> {
        let now = millis(now);
        let f = &self.store.file;
        let read = f.db.begin_read().map_err(|e| f.err(e))?;
        let meta = read.open_table(META).map_err(|e| f.err(e))?;
        let last_commit = match meta.get("last_commit").map_err(|e| f.err(e))? {
            Some(v) => Reader(v.value())
                .u64()
                .map_err(|d| f.damaged("meta", d.0))?,
            None => now,
        };
        let sessions = read.open_table(SESSIONS).map_err(|e| f.err(e))?;
        let subscriptions = read.open_table(SUBSCRIPTIONS).map_err(|e| f.err(e))?;
        let outgoing = read.open_table(OUTGOING).map_err(|e| f.err(e))?;
        let incoming = read.open_table(INCOMING).map_err(|e| f.err(e))?;
        let wills = read.open_table(WILLS).map_err(|e| f.err(e))?;
        let retained = read.open_table(RETAINED).map_err(|e| f.err(e))?;

        let mut out = BrokerSnapshot::default();
        for row in sessions.iter().map_err(|e| f.err(e))? {
            let (k, v) = row.map_err(|e| f.err(e))?;
            let id = k.value();
            let client_id = MqttString::new(alloc::string::String::from(id))
                .map_err(|e| f.damaged("sessions", e.to_string()))?;
            let (expiry, offline_since, username) =
                read_session(v.value()).map_err(|d| f.damaged("sessions", d.0))?;
            let since = if offline_since == 0 {
                last_commit
            } else {
                offline_since
            };
            let offline = secs_between(since, now);
            let expiry_interval = if expiry == SESSION_NEVER_EXPIRES {
                expiry
            } else {
                expiry.saturating_sub(offline).max(1)
            };

            let mut subs = Vec::new();
            for row in subscriptions.range((id, "")..).map_err(|e| f.err(e))? {
                let (k, v) = row.map_err(|e| f.err(e))?;
                if k.value().0 != id {
                    break;
                }
                let (filter, options, sid) = record::read_subscription(v.value())
                    .map_err(|d| f.damaged("subscriptions", d.0))?;
                subs.push(StoredSubscription {
                    filter,
                    options,
                    id: sid,
                });
            }

            let mut messages = Vec::new();
            let mut max_id = 0u16;
            for row in outgoing
                .range((id, 0u16)..=(id, u16::MAX))
                .map_err(|e| f.err(e))?
            {
                let (k, v) = row.map_err(|e| f.err(e))?;
                let pid = k.value().1;
                max_id = max_id.max(pid);
                if let Some(entry) =
                    read_outgoing(pid, v.value(), now).map_err(|d| f.damaged("outgoing", d.0))?
                {
                    messages.push(entry);
                }
            }
            messages.sort_by_key(|e| e.seq);

            let mut incoming_qos2 = Vec::new();
            for row in incoming
                .range((id, 0u16)..=(id, u16::MAX))
                .map_err(|e| f.err(e))?
            {
                let (k, _) = row.map_err(|e| f.err(e))?;
                if let Some(pid) = mqtt_codec::PacketId::new(k.value().1) {
                    incoming_qos2.push(pid);
                }
            }

            let will = match wills.get(id).map_err(|e| f.err(e))? {
                Some(v) => {
                    let mut w =
                        record::read_will(v.value()).map_err(|d| f.damaged("wills", d.0))?;
                    if let Some(d) = w.properties.will_delay_interval {
                        w.properties.will_delay_interval = Some(d.saturating_sub(offline));
                    }
                    Some(w)
                }
                None => None,
            };

            out.sessions.insert(
                client_id.clone(),
                SessionSnapshot {
                    expiry_interval,
                    username,
                    subscriptions: subs,
                    state: SessionState {
                        client_id,
                        outgoing: messages,
                        incoming_qos2,
                        requests: Vec::new(),
                        next_packet_id: max_id.checked_add(1).unwrap_or(1),
                    },
                    will,
                },
            );
        }

        for row in retained.iter().map_err(|e| f.err(e))? {
            let (_, v) = row.map_err(|e| f.err(e))?;
            let mut r = Reader(v.value());
            let parsed = (|| {
                let stored_at = r.u64()?;
                let qos = qos_of(r.u8()?)?;
                let mut publish = r.publish()?;
                Ok::<_, Damaged>(
                    age_message(&mut publish, stored_at, now).then_some((publish, qos)),
                )
            })();
            if let Some((publish, qos)) = parsed.map_err(|d| f.damaged("retained", d.0))? {
                out.retained
                    .insert(publish.topic.clone(), RetainedMessage { publish, qos });
            }
        }
        Ok(out)
    }
}

fn apply(f: &File, txn: &WriteTransaction, op: &StoreOp, now: u64) -> Result<(), StoreError> {
    let e = |e: redb::StorageError| f.err(e);
    let t = |e: redb::TableError| f.err(e);
    let has_session = |id: &str| -> Result<bool, StoreError> {
        let sessions = txn.open_table(SESSIONS).map_err(t)?;
        Ok(sessions.get(id).map_err(e)?.is_some())
    };
    match op {
        StoreOp::PutSession {
            client_id,
            expiry_interval,
            username,
        } => {
            let mut w = Writer::default();
            w.u32(*expiry_interval).u64(0);
            match username {
                Some(u) => w.u8(1).bytes(u.as_str().as_bytes()),
                None => w.u8(0),
            };
            let mut sessions = txn.open_table(SESSIONS).map_err(t)?;
            sessions
                .insert(client_id.as_str(), w.0.as_slice())
                .map_err(e)?;
        }
        StoreOp::SessionOffline(client_id) => {
            let mut sessions = txn.open_table(SESSIONS).map_err(t)?;
            let old = sessions
                .get(client_id.as_str())
                .map_err(e)?
                .map(|v| v.value().to_vec());
            if let Some(mut rec) = old {
                if rec.len() < 12 {
                    return Err(f.damaged("sessions", "record too short"));
                }
                rec[4..12].copy_from_slice(&now.max(1).to_be_bytes());
                sessions
                    .insert(client_id.as_str(), rec.as_slice())
                    .map_err(e)?;
            }
        }
        StoreOp::RemoveSession(client_id) => {
            let id = client_id.as_str();
            txn.open_table(SESSIONS).map_err(t)?.remove(id).map_err(e)?;
            txn.open_table(WILLS).map_err(t)?.remove(id).map_err(e)?;
            txn.open_table(OUTGOING)
                .map_err(t)?
                .retain_in((id, 0u16)..=(id, u16::MAX), |_, _| false)
                .map_err(e)?;
            txn.open_table(INCOMING)
                .map_err(t)?
                .retain_in((id, 0u16)..=(id, u16::MAX), |_, _| false)
                .map_err(e)?;
            let mut subs = txn.open_table(SUBSCRIPTIONS).map_err(t)?;
            let mut filters = Vec::new();
            for row in subs.range((id, "")..).map_err(e)? {
                let (k, _) = row.map_err(e)?;
                let (cid, filter) = k.value();
                if cid != id {
                    break;
                }
                filters.push(alloc::string::String::from(filter));
            }
            for filter in &filters {
                subs.remove((id, filter.as_str())).map_err(e)?;
            }
        }
        StoreOp::PutSubscription {
            client_id,
            filter,
            options,
            id,
        } => {
            if has_session(client_id.as_str())? {
                let rec = record::subscription_record(filter, *options, *id)
                    .map_err(|d| f.damaged("subscriptions", d.0))?;
                txn.open_table(SUBSCRIPTIONS)
                    .map_err(t)?
                    .insert((client_id.as_str(), filter.as_str()), rec.as_slice())
                    .map_err(e)?;
            }
        }
        StoreOp::RemoveSubscription { client_id, filter } => {
            txn.open_table(SUBSCRIPTIONS)
                .map_err(t)?
                .remove((client_id.as_str(), filter.as_str()))
                .map_err(e)?;
        }
        StoreOp::Session { client_id, op } => {
            let id = client_id.as_str();
            match op {
                SessionOp::PutOutgoing(entry) => {
                    if has_session(id)? {
                        let rec =
                            outgoing_record(entry, now).map_err(|d| f.damaged("outgoing", d.0))?;
                        txn.open_table(OUTGOING)
                            .map_err(t)?
                            .insert((id, entry.packet_id.get()), rec.as_slice())
                            .map_err(e)?;
                    }
                }
                SessionOp::RemoveOutgoing(pid) => {
                    txn.open_table(OUTGOING)
                        .map_err(t)?
                        .remove((id, pid.get()))
                        .map_err(e)?;
                }
                SessionOp::PutIncoming(pid) => {
                    if has_session(id)? {
                        txn.open_table(INCOMING)
                            .map_err(t)?
                            .insert((id, pid.get()), ())
                            .map_err(e)?;
                    }
                }
                SessionOp::RemoveIncoming(pid) => {
                    txn.open_table(INCOMING)
                        .map_err(t)?
                        .remove((id, pid.get()))
                        .map_err(e)?;
                }
                // A broker's session has no requests of its own, and its client id is the
                // key.
                SessionOp::PutRequest(_)
                | SessionOp::RemoveRequest(_)
                | SessionOp::SetClientId(_) => {}
            }
        }
        StoreOp::PutWill { client_id, will } => {
            if has_session(client_id.as_str())? {
                let rec = record::will_record(will).map_err(|d| f.damaged("wills", d.0))?;
                txn.open_table(WILLS)
                    .map_err(t)?
                    .insert(client_id.as_str(), rec.as_slice())
                    .map_err(e)?;
            }
        }
        StoreOp::RemoveWill(client_id) => {
            txn.open_table(WILLS)
                .map_err(t)?
                .remove(client_id.as_str())
                .map_err(e)?;
        }
        StoreOp::PutRetained { publish, qos } => {
            let mut w = Writer::default();
            w.u64(now).u8(*qos as u8);
            w.packet(&Packet::Publish(publish.clone()))
                .map_err(|d| f.damaged("retained", d.0))?;
            txn.open_table(RETAINED)
                .map_err(t)?
                .insert(publish.topic.as_str(), w.0.as_slice())
                .map_err(e)?;
        }
        StoreOp::RemoveRetained(topic) => {
            txn.open_table(RETAINED)
                .map_err(t)?
                .remove(topic.as_str())
                .map_err(e)?;
        }
    }
    Ok(())
}

fn read_session(rec: &[u8]) -> Result<(u32, u64, Option<MqttString>), Damaged> {
    let mut r = Reader(rec);
    let expiry = r.u32()?;
    let offline = r.u64()?;
    let username = match r.u8()? {
        0 => None,
        _ => Some(r.string()?),
    };
    Ok((expiry, offline, username))
}

pub(super) fn outgoing_record(entry: &OutgoingEntry, now: u64) -> Result<Vec<u8>, Damaged> {
    let mut w = Writer::default();
    w.u64(entry.seq).u64(now);
    match &entry.state {
        OutgoingState::Publish { publish, .. } => {
            w.u8(0).packet(&Packet::Publish(publish.clone()))?;
        }
        OutgoingState::PubRel => {
            w.u8(1);
        }
    }
    Ok(w.0)
}

/// A stored outgoing message as it resumes: marked as sent (it may have reached the
/// client), its expiry reduced by the time it waited; none if that expiry passed.
pub(super) fn read_outgoing(
    pid: u16,
    rec: &[u8],
    now: u64,
) -> Result<Option<OutgoingEntry>, Damaged> {
    let packet_id =
        mqtt_codec::PacketId::new(pid).ok_or_else(|| Damaged("packet identifier 0".into()))?;
    let mut r = Reader(rec);
    let seq = r.u64()?;
    let stored_at = r.u64()?;
    let state = match r.u8()? {
        0 => {
            let mut publish = r.publish()?;
            if publish.qos_pid.packet_id() != Some(packet_id) {
                return Err(Damaged("stored under another packet identifier".into()));
            }
            if !age_message(&mut publish, stored_at, now) {
                return Ok(None);
            }
            OutgoingState::Publish { publish }
        }
        1 => OutgoingState::PubRel,
        other => return Err(Damaged(alloc::format!("unknown state {other}"))),
    };
    Ok(Some(OutgoingEntry {
        seq,
        packet_id,
        sent: true,
        on_wire: false,
        state,
    }))
}

/// Takes the time a message waited off its Message Expiry Interval; false if it expired.
fn age_message(p: &mut mqtt_codec::Publish, stored_at: u64, now: u64) -> bool {
    let Some(interval) = p.properties.message_expiry_interval else {
        return true;
    };
    let waited = secs_between(stored_at, now);
    if waited >= interval {
        return false;
    }
    if waited > 0 {
        p.properties.message_expiry_interval = Some(interval - waited);
    }
    true
}

fn qos_of(b: u8) -> Result<QoS, Damaged> {
    match b {
        0 => Ok(QoS::AtMostOnce),
        1 => Ok(QoS::AtLeastOnce),
        2 => Ok(QoS::ExactlyOnce),
        _ => Err(Damaged(alloc::format!("QoS {b}"))),
    }
}
