//! Broker scenarios over the in-memory harness: each test is a story told as a wire
//! transcript, and cites the rule of the specification it checks.

#[path = "../common/mod.rs"]
mod common;

mod auth;
mod connect;
mod flow;
mod limits;
#[cfg(feature = "persist")]
mod persist;
mod problem;
mod qos;
mod retained;
mod snapshot;
mod subscribe;
mod v311;
mod violations;
mod will;
