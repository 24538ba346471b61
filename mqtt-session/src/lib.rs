//! Sans-IO MQTT session state machines (client and broker), built on [`mqtt_codec`].
//!
//! This crate is being built; see the workspace README for its plan.
//!
//! ```
//! assert_eq!(mqtt_session::codec_version(), env!("CARGO_PKG_VERSION"));
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

/// The version of the codec this crate was built with.
pub fn codec_version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}
