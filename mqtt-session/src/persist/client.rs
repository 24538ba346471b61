//! The client's store.

use alloc::vec::Vec;
use std::path::Path;

use mqtt_codec::{MqttString, Packet, PacketId};
use redb::{ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use super::broker::{outgoing_record, read_outgoing};
use super::record::{Reader, Writer};
use super::{File, META, Store, StoreError};
use crate::store::{Request, SessionOp, SessionState};

/// Packet id → sequence (u64), stored at (u64), then 0 and the PUBLISH, or 1 (PUBREL sent).
const OUTGOING: TableDefinition<u16, &[u8]> = TableDefinition::new("client_outgoing");
/// Packet ids of incoming QoS 2 messages awaiting PUBREL.
const INCOMING: TableDefinition<u16, ()> = TableDefinition::new("client_incoming");
/// Packet id → the SUBSCRIBE or UNSUBSCRIBE awaiting its acknowledgement.
const REQUESTS: TableDefinition<u16, &[u8]> = TableDefinition::new("client_requests");

/// A crash-safe store of a client's session: its client identifier, its QoS 1/2 messages
/// in flight, the incoming QoS 2 identifiers awaiting PUBREL, and its unanswered SUBSCRIBE
/// and UNSUBSCRIBE requests. Apply every [`SessionOp`] the client emits, commit before the
/// packet that follows them is sent, and resume with
/// [`Client::resume`](crate::client::Client::resume)`(config, store.state()?)`.
#[derive(Debug)]
pub struct ClientStore {
    store: Store,
}

impl ClientStore {
    /// Opens the store in the file at `path`, creating it if there is none.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let file = File::open(path.as_ref(), "client", |w| {
            w.open_table(OUTGOING)?;
            w.open_table(INCOMING)?;
            w.open_table(REQUESTS)?;
            Ok(())
        })?;
        Ok(Self {
            store: Store::new(file),
        })
    }

    /// Adds `op` to the transaction in progress (beginning one if needed). It is durable
    /// once [`commit`](Self::commit) returns; after an error, the transaction in progress
    /// is lost.
    pub fn apply(&mut self, op: &SessionOp) -> Result<(), StoreError> {
        self.store.apply(|f, txn| apply(f, txn, op))
    }

    /// Operations applied and not yet committed.
    pub fn pending(&self) -> usize {
        self.store.pending
    }

    /// Makes every operation applied so far durable, with one sync of the file. Does
    /// nothing when nothing is pending.
    pub fn commit(&mut self) -> Result<(), StoreError> {
        self.store.commit(|_, _| Ok(()))
    }

    /// The committed session, to resume from. Every stored PUBLISH is marked as sent (it
    /// may have reached the server): it goes again with DUP set.
    pub fn state(&self) -> Result<SessionState, StoreError> {
        let f = &self.store.file;
        let read = f.db.begin_read().map_err(|e| f.err(e))?;
        let meta = read.open_table(META).map_err(|e| f.err(e))?;
        let client_id = match meta.get("client_id").map_err(|e| f.err(e))? {
            Some(v) => Reader(v.value())
                .string()
                .map_err(|d| f.damaged("meta", d.0))?,
            None => MqttString::empty(),
        };
        let mut max_id = 0u16;
        let mut outgoing = Vec::new();
        for row in read
            .open_table(OUTGOING)
            .map_err(|e| f.err(e))?
            .iter()
            .map_err(|e| f.err(e))?
        {
            let (k, v) = row.map_err(|e| f.err(e))?;
            max_id = max_id.max(k.value());
            // A client's messages keep their expiry as stored: the client is not bound by
            // it, and nothing expires a message it is delivering.
            if let Some(e) =
                read_outgoing(k.value(), v.value(), 0).map_err(|d| f.damaged("outgoing", d.0))?
            {
                outgoing.push(e);
            }
        }
        outgoing.sort_by_key(|e| e.seq);
        let mut incoming_qos2 = Vec::new();
        for row in read
            .open_table(INCOMING)
            .map_err(|e| f.err(e))?
            .iter()
            .map_err(|e| f.err(e))?
        {
            let (k, _) = row.map_err(|e| f.err(e))?;
            incoming_qos2.extend(PacketId::new(k.value()));
        }
        let mut requests = Vec::new();
        for row in read
            .open_table(REQUESTS)
            .map_err(|e| f.err(e))?
            .iter()
            .map_err(|e| f.err(e))?
        {
            let (k, v) = row.map_err(|e| f.err(e))?;
            max_id = max_id.max(k.value());
            let request = match Reader(v.value()).packet() {
                Ok(Packet::Subscribe(s)) => Request::Subscribe(s),
                Ok(Packet::Unsubscribe(u)) => Request::Unsubscribe(u),
                Ok(_) => return Err(f.damaged("requests", "not a SUBSCRIBE or UNSUBSCRIBE")),
                Err(d) => return Err(f.damaged("requests", d.0)),
            };
            requests.push(request);
        }
        Ok(SessionState {
            client_id,
            outgoing,
            incoming_qos2,
            requests,
            next_packet_id: max_id.checked_add(1).unwrap_or(1),
        })
    }
}

fn apply(f: &File, txn: &WriteTransaction, op: &SessionOp) -> Result<(), StoreError> {
    let e = |e: redb::StorageError| f.err(e);
    let t = |e: redb::TableError| f.err(e);
    match op {
        SessionOp::PutOutgoing(entry) => {
            // The stored-at time only matters to a broker's message expiry.
            let rec = outgoing_record(entry, 0).map_err(|d| f.damaged("outgoing", d.0))?;
            txn.open_table(OUTGOING)
                .map_err(t)?
                .insert(entry.packet_id.get(), rec.as_slice())
                .map_err(e)?;
        }
        SessionOp::RemoveOutgoing(pid) => {
            txn.open_table(OUTGOING)
                .map_err(t)?
                .remove(pid.get())
                .map_err(e)?;
        }
        SessionOp::PutIncoming(pid) => {
            txn.open_table(INCOMING)
                .map_err(t)?
                .insert(pid.get(), ())
                .map_err(e)?;
        }
        SessionOp::RemoveIncoming(pid) => {
            txn.open_table(INCOMING)
                .map_err(t)?
                .remove(pid.get())
                .map_err(e)?;
        }
        SessionOp::PutRequest(r) => {
            let packet = match r {
                Request::Subscribe(s) => Packet::Subscribe(s.clone()),
                Request::Unsubscribe(u) => Packet::Unsubscribe(u.clone()),
            };
            let mut w = Writer::default();
            w.packet(&packet).map_err(|d| f.damaged("requests", d.0))?;
            txn.open_table(REQUESTS)
                .map_err(t)?
                .insert(r.packet_id().get(), w.0.as_slice())
                .map_err(e)?;
        }
        SessionOp::RemoveRequest(pid) => {
            txn.open_table(REQUESTS)
                .map_err(t)?
                .remove(pid.get())
                .map_err(e)?;
        }
        SessionOp::SetClientId(id) => {
            let mut w = Writer::default();
            w.bytes(id.as_str().as_bytes());
            txn.open_table(META)
                .map_err(t)?
                .insert("client_id", w.0.as_slice())
                .map_err(e)?;
        }
    }
    Ok(())
}
