//! Who may publish, subscribe and read where: an ACL file in mosquitto's `acl_file` format,
//! enforced through the core's `Authorizer`.
//!
//! ```text
//! # before any `user` line: clients without a user name
//! topic read public/#
//! user alice
//! topic readwrite alice/#
//! topic deny alice/secret
//! # every client: %c is its client identifier, %u its user name
//! pattern write clients/%c/status
//! ```
//!
//! `topic [read|write|readwrite|deny] FILTER` (readwrite when the access is left out) applies
//! to the user of the `user` line above it, or to anonymous clients before any; `pattern`
//! lines apply to everyone. With an ACL file, what no line allows is refused, and a `deny`
//! that matches wins over any allow. Writing is checked per PUBLISH (and for a will),
//! reading per delivered message, so a subscription to `#` receives only what its client
//! may read; a SUBSCRIBE is refused when no readable filter could match any topic of it.
//! A `%c` or `%u` pattern does not apply to a client whose identifier or user name holds
//! `+`, `#` or `/` (one could otherwise widen its own rule), and `%u` not to anonymous ones.

// The crate is no_std underneath; this module has std.
use std::format;
use std::string::{String, ToString};
use std::vec::Vec;

use std::collections::HashMap;

use crate::broker::{Authorizer, ClientInfo};
use mqtt_codec::{TopicFilter, TopicName, matches_filter};

/// What a rule grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
    ReadWrite,
    Deny,
}

impl Access {
    fn reads(self) -> bool {
        matches!(self, Self::Read | Self::ReadWrite)
    }
    fn writes(self) -> bool {
        matches!(self, Self::Write | Self::ReadWrite)
    }
}

/// One `topic` or `pattern` line.
#[derive(Debug, Clone)]
struct Rule {
    access: Access,
    filter: String,
}

/// The rules of an ACL file, as an [`Authorizer`] for [`Server::authorizer`].
///
/// ```
/// use mqtt_session::server::Acl;
///
/// let acl = Acl::parse("user alice\ntopic readwrite alice/#\npattern read clients/%c/#\n");
/// assert!(acl.is_ok());
/// assert!(Acl::parse("topic read a/#/b").is_err()); // not a topic filter
/// ```
///
/// [`Server::authorizer`]: super::Server::authorizer
#[derive(Debug, Default)]
pub struct Acl {
    anonymous: Vec<Rule>,
    users: HashMap<String, Vec<Rule>>,
    patterns: Vec<Rule>,
}

impl Acl {
    /// Reads an ACL file; errors name the file and line.
    pub fn load(path: impl AsRef<std::path::Path>) -> Result<Self, String> {
        let path = path.as_ref().display();
        let text = std::fs::read_to_string(path.to_string()).map_err(|e| format!("{path}: {e}"))?;
        Self::parse(&text).map_err(|e| format!("{path}:{e}"))
    }

    /// Parses an ACL file's text; errors begin with the line number (`3: ...`).
    pub fn parse(text: &str) -> Result<Self, String> {
        Self::parse_lines(text).map_err(|(n, e)| format!("{n}: {e}"))
    }

    fn parse_lines(text: &str) -> Result<Self, (usize, String)> {
        let mut acl = Self::default();
        let mut user: Option<String> = None;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |e: &str| (n + 1, e.to_string());
            let (keyword, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let rest = rest.trim();
            match keyword {
                "user" if !rest.is_empty() => user = Some(rest.to_string()),
                "user" => return Err(err("`user` needs a user name")),
                "topic" | "pattern" => {
                    let rule = Self::rule(rest).map_err(|e| err(&e))?;
                    if keyword == "pattern" {
                        acl.patterns.push(rule);
                    } else if let Some(u) = &user {
                        acl.users.entry(u.clone()).or_default().push(rule);
                    } else {
                        acl.anonymous.push(rule);
                    }
                }
                other => return Err(err(&format!("unknown keyword {other:?}"))),
            }
        }
        Ok(acl)
    }

    fn rule(rest: &str) -> Result<Rule, String> {
        let (access, filter) = match rest.split_once(char::is_whitespace) {
            Some((a, f)) if matches!(a, "read" | "write" | "readwrite" | "deny") => {
                let access = match a {
                    "read" => Access::Read,
                    "write" => Access::Write,
                    "readwrite" => Access::ReadWrite,
                    _ => Access::Deny,
                };
                (access, f.trim())
            }
            _ => (Access::ReadWrite, rest),
        };
        if filter.is_empty() {
            return Err("a rule needs a topic filter".into());
        }
        TopicFilter::new(filter.to_string()).map_err(|e| format!("{filter:?}: {e}"))?;
        Ok(Rule {
            access,
            filter: filter.to_string(),
        })
    }

    /// Calls `f` with each rule that applies to `client` (access, filter), patterns filled in.
    fn each_rule(&self, client: &ClientInfo<'_>, mut f: impl FnMut(Access, &str)) {
        let own: &[Rule] = match client.username {
            Some(u) => self.users.get(u.as_str()).map_or(&[], Vec::as_slice),
            None => &self.anonymous,
        };
        for r in own {
            f(r.access, &r.filter);
        }
        let unsafe_name = |s: &str| s.contains(['+', '#', '/']);
        for p in &self.patterns {
            if !p.filter.contains('%') {
                f(p.access, &p.filter);
                continue;
            }
            let mut filter = p.filter.clone();
            if filter.contains("%c") {
                if unsafe_name(client.client_id.as_str()) {
                    continue;
                }
                filter = filter.replace("%c", client.client_id.as_str());
            }
            if filter.contains("%u") {
                match client.username {
                    Some(u) if !unsafe_name(u.as_str()) => {
                        filter = filter.replace("%u", u.as_str());
                    }
                    _ => continue,
                }
            }
            f(p.access, &filter);
        }
    }

    /// Whether `topic` is granted by a rule `grants` and matched by no `deny`.
    fn allows(&self, client: &ClientInfo<'_>, topic: &str, grants: fn(Access) -> bool) -> bool {
        let (mut granted, mut denied) = (false, false);
        self.each_rule(client, |access, filter| {
            if matches_filter(filter, topic) {
                denied |= access == Access::Deny;
                granted |= grants(access);
            }
        });
        granted && !denied
    }
}

/// Whether some topic matches both filters.
fn overlap(a: &str, b: &str) -> bool {
    let dollar = |f: &str| f.starts_with('$');
    let wild = |f: &str| f.starts_with(['+', '#']);
    // A wildcard first level never matches a `$` topic ([MQTT-4.7.2-1]).
    if (dollar(a) && wild(b)) || (dollar(b) && wild(a)) {
        return false;
    }
    let (mut x, mut y) = (a.split('/'), b.split('/'));
    loop {
        match (x.next(), y.next()) {
            (Some("#"), _) | (_, Some("#")) => return true,
            (None, None) => return true,
            (Some("+"), Some(_)) | (Some(_), Some("+")) => {}
            (Some(p), Some(q)) if p == q => {}
            _ => return false,
        }
    }
}

impl Authorizer for Acl {
    fn may_publish(&self, client: &ClientInfo<'_>, topic: &TopicName) -> bool {
        self.allows(client, topic.as_str(), Access::writes)
    }

    fn may_subscribe(&self, client: &ClientInfo<'_>, filter: &TopicFilter) -> bool {
        let f = match filter.shared() {
            Some(Ok((_, inner))) => inner,
            _ => filter.as_str(),
        };
        // Refused if a deny covers it whole (a deny for the very filter, or `#`), or if no
        // readable filter overlaps it; deliveries are checked one by one anyway.
        let (mut readable, mut denied) = (false, false);
        self.each_rule(client, |access, rule| {
            denied |= access == Access::Deny && (rule == f || rule == "#");
            readable |= access.reads() && overlap(rule, f);
        });
        readable && !denied
    }

    fn may_receive(&self, client: &ClientInfo<'_>, topic: &TopicName) -> bool {
        self.allows(client, topic.as_str(), Access::reads)
    }

    fn checks_receipt(&self) -> bool {
        true
    }
}
