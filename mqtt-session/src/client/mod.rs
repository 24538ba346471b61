//! The sans-IO MQTT client session (in progress).
