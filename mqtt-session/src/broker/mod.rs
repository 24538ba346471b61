//! The sans-IO MQTT broker core (in progress).
