//! Who may connect: a `user:password` file and the anonymous switch.

use std::collections::HashMap;

use mqtt_codec::ReasonCode;
use mqtt_session::broker::ConnectRequest;

/// The credentials the broker accepts.
#[derive(Debug, Default)]
pub struct Users {
    /// `None`: no users file, any credentials pass.
    passwords: Option<HashMap<String, String>>,
    allow_anonymous: bool,
}

impl Users {
    /// Reads `user:password` lines (blank lines and `#` comments skipped).
    pub fn load(path: Option<&str>, allow_anonymous: Option<bool>) -> Result<Self, String> {
        let Some(path) = path else {
            return Ok(Self {
                passwords: None,
                allow_anonymous: allow_anonymous.unwrap_or(true),
            });
        };
        let text = std::fs::read_to_string(path).map_err(|e| format!("--users {path}: {e}"))?;
        let mut passwords = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((user, password)) = line.split_once(':') else {
                return Err(format!("--users {path}:{}: expected user:password", n + 1));
            };
            passwords.insert(user.to_string(), password.to_string());
        }
        Ok(Self {
            passwords: Some(passwords),
            allow_anonymous: allow_anonymous.unwrap_or(false),
        })
    }

    /// The decision for a CONNECT: `Ok` to accept, or the reason code refusing it.
    pub fn decide(&self, r: &ConnectRequest) -> Result<(), ReasonCode> {
        if r.authentication_method.is_some() {
            // No enhanced authentication method is implemented here ([MQTT-4.12.0-1]).
            return Err(ReasonCode::BAD_AUTHENTICATION_METHOD);
        }
        let Some(user) = &r.username else {
            return if self.allow_anonymous {
                Ok(())
            } else {
                Err(ReasonCode::NOT_AUTHORIZED)
            };
        };
        let Some(passwords) = &self.passwords else {
            return Ok(());
        };
        let given = r.password.as_deref().unwrap_or_default();
        match passwords.get(user.as_str()) {
            Some(p) if p.as_bytes() == given => Ok(()),
            _ => Err(ReasonCode::BAD_USER_NAME_OR_PASSWORD),
        }
    }
}
