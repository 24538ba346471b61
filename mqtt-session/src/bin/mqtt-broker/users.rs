//! Who may connect: a password file in mosquitto's format, and the anonymous switch.
//!
//! Each line is `user:secret`. Secrets written by `mosquitto_passwd` are accepted as they
//! are: `$7$iterations$salt$hash` (PBKDF2-SHA512, mosquitto 2's default) and `$6$salt$hash`
//! (SHA-512 of the password and salt, mosquitto 1.x), salt and hash in base64. A secret
//! without `$` is a plain-text password, accepted with a warning at load (hash the file with
//! `mosquitto_passwd -U`, or write entries with `broker passwd`). An empty password never
//! matches. Comparisons take the same time whether they match or not, and an unknown user
//! costs the same as a known one.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use mqtt_codec::{MqttString, ReasonCode};
use mqtt_session::broker::ConnectRequest;
use mqtt_session::time::Instant;
use ring::{digest, pbkdf2, rand};
use subtle::ConstantTimeEq;

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
pub fn hash_password(password: &str) -> Result<String, String> {
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

/// `broker passwd FILE USER PASSWORD`: adds USER to FILE, or replaces its entry, with a
/// `$7$` secret (the file is created if missing).
pub fn passwd_command(args: &[String]) -> Result<(), String> {
    let [file, user, password] = args else {
        return Err("usage: broker passwd FILE USER PASSWORD".into());
    };
    if user.is_empty() || user.contains(':') {
        return Err("a user name must be non-empty and without ':'".into());
    }
    if password.is_empty() {
        return Err("an empty password would never match".into());
    }
    let old = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("{file}: {e}")),
    };
    let mut out: Vec<String> = old
        .lines()
        .filter(|l| l.split_once(':').is_none_or(|(u, _)| u != user))
        .map(str::to_string)
        .collect();
    out.push(format!("{user}:{}", hash_password(password)?));
    std::fs::write(file, out.join("\n") + "\n").map_err(|e| format!("{file}: {e}"))
}

/// The credentials the broker accepts, and how fast each source address may try them.
#[derive(Debug, Default)]
pub struct Users {
    /// `None`: no password file, any credentials pass.
    secrets: Option<HashMap<String, Secret>>,
    allow_anonymous: bool,
    /// Connect rate and login failures per source address.
    pub throttle: Throttle,
    /// A client that presented a TLS certificate is that certificate's Common Name: it
    /// needs no password, and whatever user name its CONNECT claims is replaced.
    pub use_identity_as_username: bool,
}

impl Users {
    /// Reads a password file (blank lines and `#` comments skipped). Without one, every
    /// user name passes and `allow_anonymous` defaults to true; with one, to false.
    pub fn load(path: Option<&str>, allow_anonymous: Option<bool>) -> Result<Self, String> {
        let Some(path) = path else {
            return Ok(Self {
                secrets: None,
                allow_anonymous: allow_anonymous.unwrap_or(true),
                throttle: Throttle::default(),
                use_identity_as_username: false,
            });
        };
        let text = std::fs::read_to_string(path).map_err(|e| format!("--users {path}: {e}"))?;
        Ok(Self {
            secrets: Some(Self::parse(&text, path)?),
            allow_anonymous: allow_anonymous.unwrap_or(false),
            throttle: Throttle::default(),
            use_identity_as_username: false,
        })
    }

    fn parse(text: &str, path: &str) -> Result<HashMap<String, Secret>, String> {
        let mut secrets = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = || format!("--users {path}:{}", n + 1);
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
        Ok(secrets)
    }

    /// The decision for a CONNECT from `from` at `now`, whose TLS certificate (if any) names
    /// `identity`: `Ok` to accept (`Some` user name: under that name), or the reason code
    /// refusing it. The source address's rate and past failures come first (0x9F), then
    /// the credentials; the outcome counts for the address.
    pub fn decide(
        &mut self,
        r: &ConnectRequest,
        from: Option<IpAddr>,
        identity: Option<&str>,
        now: Instant,
    ) -> Result<Option<MqttString>, ReasonCode> {
        if let Some(ip) = from {
            self.throttle.admit(ip, now)?;
        }
        let d = match identity {
            Some(name) if self.use_identity_as_username => MqttString::new(name.to_string())
                .map(Some)
                .map_err(|_| ReasonCode::NOT_AUTHORIZED),
            _ => self.check(r).map(|()| None),
        };
        if let Some(ip) = from {
            self.throttle.outcome(ip, d.is_ok(), now);
        }
        d
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
pub const MAX_SOURCES: usize = 100_000;

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
    pub fn admit(&mut self, ip: IpAddr, now: Instant) -> Result<(), ReasonCode> {
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
    #[allow(dead_code)] // read by the tests
    pub fn tracked(&self) -> usize {
        self.sources.len()
    }

    /// The outcome of a login from `ip`: a success clears its failures; a failure beyond
    /// `failures_allowed` pauses it, twice as long each time.
    pub fn outcome(&mut self, ip: IpAddr, ok: bool, now: Instant) {
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
