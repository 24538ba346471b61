//! Who may connect: a password file in mosquitto's format, and the anonymous switch.
//!
//! Each line is `user:secret`. Secrets written by `mosquitto_passwd` are accepted as they
//! are: `$7$iterations$salt$hash` (PBKDF2-SHA512, mosquitto 2's default) and `$6$salt$hash`
//! (SHA-512 of the password and salt, mosquitto 1.x), salt and hash in base64. A secret
//! without `$` is a plain-text password, accepted with a warning at load (hash the file with
//! `mosquitto_passwd -U`, or write entries with `mqtt-broker passwd`). An empty password never
//! matches. Comparisons take the same time whether they match or not, and an unknown user
//! costs the same as a known one.

// The crate is no_std underneath; this module has std.
use std::string::{String, ToString};
use std::vec::Vec;
use std::{format, vec};

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::path::Path;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use mqtt_codec::{MqttString, ReasonCode};
use ring::{digest, pbkdf2, rand};
use subtle::ConstantTimeEq;
use tracing::warn;

use super::{Authenticator, Peer};
use crate::broker::ConnectRequest;
use crate::time::Instant;

/// PBKDF2 iterations for entries this broker writes: mosquitto_passwd's default, since the
/// check runs for every CONNECT.
const ITERATIONS: u32 = 101;
/// Salt bytes for entries this broker writes, as mosquitto_passwd.
const SALT_LEN: usize = 12;

/// A stored password.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Secret {
    /// `$7$`: PBKDF2-HMAC-SHA512.
    Pbkdf2 {
        iterations: NonZeroU32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    /// `$6$`: SHA-512 of the password followed by the salt.
    Sha512 { salt: Vec<u8>, hash: Vec<u8> },
    /// Plain text.
    Plain(Vec<u8>),
}

impl Secret {
    fn parse(s: &str) -> Result<Self, String> {
        let b64 = |f: &str| BASE64.decode(f).map_err(|e| format!("bad base64 ({e})"));
        if let Some(rest) = s.strip_prefix("$7$") {
            let mut f = rest.split('$');
            let (Some(iterations), Some(salt), Some(hash), None) =
                (f.next(), f.next(), f.next(), f.next())
            else {
                return Err("expected $7$iterations$salt$hash".into());
            };
            let iterations = iterations
                .parse::<NonZeroU32>()
                .map_err(|_| format!("bad iteration count {iterations}"))?;
            let hash = b64(hash)?;
            if hash.len() != digest::SHA512_OUTPUT_LEN {
                return Err("a $7$ hash is 64 bytes".into());
            }
            return Ok(Self::Pbkdf2 {
                iterations,
                salt: b64(salt)?,
                hash,
            });
        }
        if let Some(rest) = s.strip_prefix("$6$") {
            let Some((salt, hash)) = rest.split_once('$') else {
                return Err("expected $6$salt$hash".into());
            };
            let hash = b64(hash)?;
            if hash.len() != digest::SHA512_OUTPUT_LEN {
                return Err("a $6$ hash is 64 bytes".into());
            }
            return Ok(Self::Sha512 {
                salt: b64(salt)?,
                hash,
            });
        }
        if s.starts_with('$') {
            return Err("unknown hash type (accepted: $7$, $6$, plain text)".into());
        }
        Ok(Self::Plain(s.as_bytes().to_vec()))
    }

    /// Whether `given` is the password, in time that does not depend on where they differ.
    fn matches(&self, given: &[u8]) -> bool {
        match self {
            Self::Pbkdf2 {
                iterations,
                salt,
                hash,
            } => {
                let alg = pbkdf2::PBKDF2_HMAC_SHA512;
                pbkdf2::verify(alg, *iterations, salt, given, hash).is_ok()
            }
            Self::Sha512 { salt, hash } => {
                let mut ctx = digest::Context::new(&digest::SHA512);
                ctx.update(given);
                ctx.update(salt);
                bool::from(ctx.finish().as_ref().ct_eq(hash))
            }
            Self::Plain(p) => !p.is_empty() && bool::from(p.as_slice().ct_eq(given)),
        }
    }
}

/// A `$7$` entry for `password`, with a fresh random salt, as mosquitto_passwd writes.
fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; SALT_LEN];
    rand::SecureRandom::fill(&rand::SystemRandom::new(), &mut salt)
        .map_err(|_| "no random source for the salt".to_string())?;
    let mut hash = [0u8; digest::SHA512_OUTPUT_LEN];
    let iterations = NonZeroU32::new(ITERATIONS).ok_or("zero iterations")?;
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA512,
        iterations,
        &salt,
        password.as_bytes(),
        &mut hash,
    );
    Ok(format!(
        "$7${ITERATIONS}${}${}",
        BASE64.encode(salt),
        BASE64.encode(hash)
    ))
}

/// The credentials the broker accepts: a password file in mosquitto's format (or none:
/// any credentials pass), whether clients without a user name are accepted, and whether a
/// TLS client is the name on its certificate. The [`Server`](super::Server)'s
/// authenticator unless another is given.
///
/// ```no_run
/// use mqtt_session::server::Users;
///
/// # fn main() -> Result<(), String> {
/// Users::add_user("passwd", "alice", "apple")?; // as `mosquitto_passwd -b passwd alice apple`
/// let users = Users::load("passwd")?.allow_anonymous(false);
/// # let _ = users;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Users {
    /// `None`: no password file, any credentials pass.
    secrets: Option<HashMap<String, Secret>>,
    allow_anonymous: bool,
    /// A client that presented a TLS certificate is that certificate's Common Name: it
    /// needs no password, and whatever user name its CONNECT claims is replaced.
    use_identity_as_username: bool,
}

impl Default for Users {
    fn default() -> Self {
        Self::any()
    }
}

impl Users {
    /// No password file: every client is accepted, with or without a user name.
    pub fn any() -> Self {
        Self {
            secrets: None,
            allow_anonymous: true,
            use_identity_as_username: false,
        }
    }

    /// Reads a password file (blank lines and `#` comments skipped): only its users, with
    /// their passwords, are accepted, and clients without a user name are refused (as
    /// mosquitto 2 does once a password file is given). Errors name the file and line.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, String> {
        let path = path.as_ref().display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        Self::parse(&text, &path)
    }

    /// A password file's text, as [`load`](Self::load) reads it; `name` is what errors
    /// call it.
    pub fn parse(text: &str, name: &str) -> Result<Self, String> {
        let mut secrets = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = || format!("{name}:{}", n + 1);
            let Some((user, secret)) = line.split_once(':') else {
                return Err(format!("{}: expected user:password", at()));
            };
            let secret = Secret::parse(secret).map_err(|e| format!("{}: {e}", at()))?;
            if matches!(secret, Secret::Plain(_)) {
                warn!(
                    "{}: plain-text password for {user:?}; hash the file with `mosquitto_passwd -U`",
                    at()
                );
            }
            secrets.insert(user.to_string(), secret);
        }
        Ok(Self {
            secrets: Some(secrets),
            allow_anonymous: false,
            use_identity_as_username: false,
        })
    }

    /// Whether clients without a user name are accepted (default: yes without a password
    /// file, no with one).
    pub fn allow_anonymous(mut self, allow: bool) -> Self {
        self.allow_anonymous = allow;
        self
    }

    /// A client that presents a TLS certificate (on a listener whose acceptor asks for one,
    /// see [`tls_acceptor`](super::tls_acceptor)) is accepted as the certificate's Common
    /// Name, without a password; the user name its CONNECT gives is replaced (mosquitto's
    /// `use_identity_as_username`). Default: off.
    pub fn use_identity_as_username(mut self, on: bool) -> Self {
        self.use_identity_as_username = on;
        self
    }

    /// Adds `user` to the password file `file` (created if missing), or replaces its entry,
    /// with a `$7$` secret (PBKDF2-SHA512 with a fresh salt), as `mosquitto_passwd` does.
    pub fn add_user(file: impl AsRef<Path>, user: &str, password: &str) -> Result<(), String> {
        let file = file.as_ref();
        if user.is_empty() || user.contains(':') {
            return Err("a user name must be non-empty and without ':'".into());
        }
        if password.is_empty() {
            return Err("an empty password would never match".into());
        }
        let old = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(format!("{}: {e}", file.display())),
        };
        let mut out: Vec<String> = old
            .lines()
            .filter(|l| l.split_once(':').is_none_or(|(u, _)| u != user))
            .map(str::to_string)
            .collect();
        out.push(format!("{user}:{}", hash_password(password)?));
        std::fs::write(file, out.join("\n") + "\n").map_err(|e| format!("{}: {e}", file.display()))
    }

    /// The credentials alone.
    fn check(&self, r: &ConnectRequest) -> Result<(), ReasonCode> {
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
        let Some(secrets) = &self.secrets else {
            return Ok(());
        };
        let given = r.password.as_deref().unwrap_or_default();
        let ok = match secrets.get(user.as_str()) {
            Some(secret) => secret.matches(given),
            None => {
                // As long as a known user's check, so that timing does not tell who exists.
                unknown_user_secret().matches(given);
                false
            }
        };
        if ok && !given.is_empty() {
            Ok(())
        } else {
            Err(ReasonCode::BAD_USER_NAME_OR_PASSWORD)
        }
    }
}

impl Authenticator for Users {
    fn authenticate(
        &mut self,
        request: &ConnectRequest,
        peer: &Peer<'_>,
    ) -> Result<Option<MqttString>, ReasonCode> {
        match peer.certificate_name {
            Some(name) if self.use_identity_as_username => MqttString::new(name.to_string())
                .map(Some)
                .map_err(|_| ReasonCode::NOT_AUTHORIZED),
            _ => self.check(request).map(|()| None),
        }
    }
}

/// A secret no password matches, checked for unknown users.
fn unknown_user_secret() -> &'static Secret {
    static SECRET: std::sync::OnceLock<Secret> = std::sync::OnceLock::new();
    SECRET.get_or_init(|| Secret::Pbkdf2 {
        iterations: NonZeroU32::MIN.saturating_add(ITERATIONS - 1),
        salt: vec![0; SALT_LEN],
        hash: vec![0; digest::SHA512_OUTPUT_LEN],
    })
}

/// Per source address: how fast it may connect, and a pause that grows with each failed
/// login, so that guessing passwords is slow. Loopback addresses are not rate-limited
/// (local tools open many connections at once), but they pause after failures like any.
///
/// ```
/// use mqtt_session::server::Throttle;
/// use std::time::Duration;
///
/// let mut throttle = Throttle::default();
/// throttle.connects_per_second = 10;
/// throttle.max_pause = Duration::from_secs(300);
/// ```
#[derive(Debug)]
pub struct Throttle {
    /// CONNECTs per source address in any one second (0: no limit).
    pub connects_per_second: u32,
    /// Failed logins from one address before it must pause (0: never).
    pub failures_allowed: u32,
    /// The first pause; each further failure doubles it, up to `max_pause`.
    pub first_pause: Duration,
    /// The longest pause.
    pub max_pause: Duration,
    sources: HashMap<IpAddr, Source>,
    /// When the full table was last swept.
    last_sweep: Option<Instant>,
}

#[derive(Debug, Clone, Copy)]
struct Source {
    /// The start of the current one-second window and the CONNECTs in it.
    window: (Instant, u32),
    /// Failed logins since the last success.
    failures: u32,
    /// Refused until then.
    paused_until: Option<Instant>,
}

/// Addresses remembered at most; beyond it those with nothing to remember are forgotten.
pub(crate) const MAX_SOURCES: usize = 100_000;

impl Default for Throttle {
    fn default() -> Self {
        Self {
            connects_per_second: 50,
            failures_allowed: 5,
            first_pause: Duration::from_secs(1),
            max_pause: Duration::from_secs(60),
            sources: HashMap::new(),
            last_sweep: None,
        }
    }
}

impl Throttle {
    /// Whether a CONNECT from `ip` may be looked at now; 0x9F Connection rate exceeded if
    /// not.
    pub(crate) fn admit(&mut self, ip: IpAddr, now: Instant) -> Result<(), ReasonCode> {
        if !self.sources.contains_key(&ip) && self.sources.len() >= MAX_SOURCES {
            // Full: forget the addresses with nothing to remember, neither a pause nor a
            // failure in the last `max_pause` (at most once a second, so that a flood of
            // new addresses does not sweep on every CONNECT). Still full, a new address
            // goes untracked: the table stays bounded.
            if self
                .last_sweep
                .is_none_or(|t| now - t >= Duration::from_secs(1))
            {
                self.last_sweep = Some(now);
                let memory = self.max_pause;
                self.sources.retain(|_, s| {
                    s.paused_until.is_some_and(|t| t > now)
                        || (s.failures > 0 && now - s.window.0 < memory)
                });
            }
            if self.sources.len() >= MAX_SOURCES {
                return Ok(());
            }
        }
        let s = self.sources.entry(ip).or_insert(Source {
            window: (now, 0),
            failures: 0,
            paused_until: None,
        });
        if s.paused_until.is_some_and(|t| t > now) {
            return Err(ReasonCode::CONNECTION_RATE_EXCEEDED);
        }
        if now - s.window.0 >= Duration::from_secs(1) {
            s.window = (now, 0);
        }
        s.window.1 += 1;
        if self.connects_per_second > 0
            && !ip.is_loopback()
            && s.window.1 > self.connects_per_second
        {
            return Err(ReasonCode::CONNECTION_RATE_EXCEEDED);
        }
        Ok(())
    }

    /// How many addresses are remembered.
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.sources.len()
    }

    /// The outcome of a login from `ip`: a success clears its failures; a failure beyond
    /// `failures_allowed` pauses it, twice as long each time.
    pub(crate) fn outcome(&mut self, ip: IpAddr, ok: bool, now: Instant) {
        let Some(s) = self.sources.get_mut(&ip) else {
            return;
        };
        if ok {
            s.failures = 0;
            s.paused_until = None;
            return;
        }
        s.failures = s.failures.saturating_add(1);
        if self.failures_allowed > 0 && s.failures >= self.failures_allowed {
            let doublings = (s.failures - self.failures_allowed).min(16);
            let pause = self
                .first_pause
                .saturating_mul(1 << doublings)
                .min(self.max_pause);
            s.paused_until = Some(now + pause);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// At most `connects_per_second` CONNECTs from one address in any second (0x9F beyond),
    /// loopback exempt; the next second it may connect again.
    #[test]
    fn a_source_address_may_connect_only_so_fast() {
        let mut t = Throttle {
            connects_per_second: 3,
            ..Throttle::default()
        };
        let remote: std::net::IpAddr = "192.0.2.7".parse().unwrap();
        let local: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        let t0 = Instant::from_secs(10);
        for i in 0..3 {
            assert_eq!(t.admit(remote, t0 + Duration::from_millis(i * 100)), Ok(()));
        }
        let late = t0 + Duration::from_millis(900);
        assert_eq!(
            t.admit(remote, late),
            Err(ReasonCode::CONNECTION_RATE_EXCEEDED)
        );
        for _ in 0..10 {
            assert_eq!(t.admit(local, late), Ok(()));
        }
        assert_eq!(t.admit(remote, t0 + Duration::from_secs(1)), Ok(()));
    }

    /// The per-address table is bounded: full of addresses that each failed a login, a new
    /// address is let through untracked rather than remembered; once the failures are older
    /// than the longest pause, a sweep (at most once a second) makes room again.
    #[test]
    fn the_per_address_table_stays_bounded() {
        let mut t = Throttle::default();
        let t0 = Instant::from_secs(10);
        let ip = |i: u32| std::net::IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
        for i in 0..MAX_SOURCES as u32 {
            assert_eq!(t.admit(ip(i), t0), Ok(()));
            t.outcome(ip(i), false, t0);
        }
        assert_eq!(t.tracked(), MAX_SOURCES);
        let newcomer = ip(MAX_SOURCES as u32);
        assert_eq!(t.admit(newcomer, t0), Ok(()));
        assert_eq!(t.tracked(), MAX_SOURCES);
        let later = t0 + t.max_pause + Duration::from_secs(1);
        assert_eq!(t.admit(newcomer, later), Ok(()));
        assert_eq!(
            t.tracked(),
            1,
            "the stale failures were forgotten, the newcomer tracked"
        );
    }
}
