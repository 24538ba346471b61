//! Sans-IO MQTT session state machines (client and broker), built on [`mqtt_codec`].
//!
//! This crate is being built; see the workspace README for its plan.
//!
//! ```
//! use mqtt_session::topic_tree::TopicTree;
//! let _ = core::mem::size_of::<TopicTree<u32>>();
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod client;
pub mod topic_tree;
