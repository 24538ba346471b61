//! `-c FILE`: the common subset of `mosquitto.conf`, turned into this broker's flags.
//!
//! Supported keys: `listener PORT [ADDRESS]` (all interfaces, IPv4, without an address) and
//! after it `protocol mqtt|websockets`, `certfile`, `keyfile`, `cafile`,
//! `require_certificate`, `use_identity_as_username`; `port` and `bind_address` (the old
//! default listener); `allow_anonymous`, `password_file`, `acl_file`, `max_packet_size`,
//! `message_size_limit` (deprecated by mosquitto 2 for `max_packet_size`, and read as it),
//! `max_queued_messages`, `max_queued_bytes`, `max_inflight_messages`, `max_keepalive`, `retain_available`,
//! `sys_interval`, `persistence` and `persistence_location` (a directory, as in mosquitto;
//! the current one if not given; our database file there is `broker.redb`), `log_type`,
//! and the logging keys `log_dest`, `log_timestamp`, `connection_messages`,
//! `per_listener_settings false`, which change nothing here. Any other key is an error
//! naming the file, the line and the key. Flags given after `-c` override the file.

/// One `listener` block.
#[derive(Debug, Default)]
struct Listener {
    address: String,
    websockets: bool,
    tls: bool,
}

/// The flags `path` stands for.
pub fn args_from_conf(path: &str) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("-c {path}: {e}"))?;
    let mut args: Vec<String> = Vec::new();
    let mut listeners: Vec<Listener> = Vec::new();
    let (mut port, mut bind_address) = (None::<String>, None::<String>);
    let (mut persistence, mut persistence_location) = (false, None::<String>);
    let push = |args: &mut Vec<String>, flag: &str, value: &str| {
        args.push(flag.to_string());
        args.push(value.to_string());
    };
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = format!("{path}:{}", n + 1);
        let mut words = line.split_whitespace();
        let key = words.next().unwrap_or_default();
        let rest: Vec<&str> = words.collect();
        let one = || match rest.as_slice() {
            [v] => Ok(*v),
            _ => Err(format!("{at}: {key} takes one value")),
        };
        let boolean = || match one()? {
            "true" => Ok(true),
            "false" => Ok(false),
            v => Err(format!("{at}: {key} {v}: expected true or false")),
        };
        let in_listener = |what: &str| {
            if listeners.is_empty() {
                Err(format!("{at}: {what} needs a `listener` line before it"))
            } else {
                Ok(())
            }
        };
        match key {
            "listener" => {
                let address = match rest.as_slice() {
                    [p] => format!("0.0.0.0:{p}"),
                    [p, a] => format!("{a}:{p}"),
                    _ => return Err(format!("{at}: listener takes a port and an address")),
                };
                listeners.push(Listener {
                    address,
                    ..Listener::default()
                });
            }
            "protocol" => {
                in_listener(key)?;
                let websockets = match one()? {
                    "mqtt" => false,
                    "websockets" => true,
                    v => return Err(format!("{at}: protocol {v}: expected mqtt or websockets")),
                };
                if let Some(l) = listeners.last_mut() {
                    l.websockets = websockets;
                }
            }
            "certfile" | "keyfile" => {
                in_listener(key)?;
                let flag = if key == "certfile" { "--cert" } else { "--key" };
                push(&mut args, flag, one()?);
                if let Some(l) = listeners.last_mut() {
                    l.tls = true;
                }
            }
            "cafile" => {
                in_listener(key)?;
                push(&mut args, "--cafile", one()?);
            }
            // Our --cafile always requires a certificate.
            "require_certificate" => {
                if !boolean()? {
                    return Err(format!(
                        "{at}: require_certificate false with a cafile is not supported"
                    ));
                }
            }
            "use_identity_as_username" => {
                if boolean()? {
                    args.push("--use-identity-as-username".into());
                }
            }
            "port" => port = Some(one()?.to_string()),
            "bind_address" => bind_address = Some(one()?.to_string()),
            "allow_anonymous" => push(&mut args, "--allow-anonymous", &boolean()?.to_string()),
            "password_file" => push(&mut args, "--users", one()?),
            "acl_file" => push(&mut args, "--acl", one()?),
            "max_packet_size" => push(&mut args, "--max-packet-size", one()?),
            "max_queued_messages" => push(&mut args, "--max-queued-messages", one()?),
            "max_queued_bytes" => push(&mut args, "--max-queued-bytes", one()?),
            "max_inflight_messages" => {
                // 0 is mosquitto's "no limit".
                let n = one()?;
                push(
                    &mut args,
                    "--max-inflight",
                    if n == "0" { "65535" } else { n },
                );
            }
            "max_keepalive" => push(&mut args, "--max-keepalive", one()?),
            // mosquitto 2 deprecates it for max_packet_size, which bounds the whole packet
            // (so a payload of exactly the limit, with its topic, is refused here).
            "message_size_limit" => match one()? {
                "0" => {}
                n => push(&mut args, "--max-packet-size", n),
            },
            "sys_interval" => push(&mut args, "--sys-interval", one()?),
            "retain_available" => {
                if !boolean()? {
                    args.push("--no-retain".into());
                }
            }
            "persistence" => persistence = boolean()?,
            "persistence_location" => persistence_location = Some(one()?.to_string()),
            "log_type" => {
                let level = match one()? {
                    "debug" | "all" => "debug",
                    "error" | "none" => "error",
                    "warning" => "warn",
                    "notice" | "information" | "subscribe" | "unsubscribe" => "info",
                    v => return Err(format!("{at}: log_type {v}: not a log type")),
                };
                push(&mut args, "--log-level", level);
            }
            "log_dest" | "log_timestamp" | "connection_messages" => {}
            "per_listener_settings" => {
                if boolean()? {
                    return Err(format!("{at}: per_listener_settings true is not supported"));
                }
            }
            other => return Err(format!("{at}: unsupported key `{other}`")),
        }
    }
    if listeners.is_empty() && (port.is_some() || bind_address.is_some()) {
        let address = bind_address.unwrap_or_else(|| "0.0.0.0".into());
        let port = port.unwrap_or_else(|| "1883".into());
        listeners.push(Listener {
            address: format!("{address}:{port}"),
            ..Listener::default()
        });
    }
    if persistence {
        let dir = persistence_location.unwrap_or_else(|| ".".into());
        push(&mut args, "--persist", &dir);
    }
    for l in listeners {
        let flag = match (l.tls, l.websockets) {
            (false, false) => "--bind",
            (true, false) => "--tls",
            (false, true) => "--ws",
            (true, true) => "--wss",
        };
        push(&mut args, flag, &l.address);
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory of its own under the system's temporary one.
    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("mqtt-broker-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// `-c mosquitto.conf`: the common subset of mosquitto's configuration file, read into the
    /// same flags; an unsupported key is an error naming the file, the line and the key.
    #[test]
    fn a_mosquitto_conf_becomes_flags() {
        let dir = scratch("conf-flags");
        let file = dir.join("mosquitto.conf");
        std::fs::write(
            &file,
            "# mosquitto.conf\nper_listener_settings false\nlistener 1883\nlistener 8883 127.0.0.1\n\
             certfile /c.pem\nkeyfile /k.pem\nlistener 9001\nprotocol websockets\n\
             allow_anonymous false\npassword_file /p\nacl_file /a\nmax_inflight_messages 0\n\
             max_keepalive 120\nretain_available false\npersistence false\nlog_type debug\n",
        )
        .unwrap();
        let f = file.to_str().unwrap();
        let args = args_from_conf(f).unwrap();
        let expected = [
            "--cert",
            "/c.pem",
            "--key",
            "/k.pem",
            "--allow-anonymous",
            "false",
            "--users",
            "/p",
            "--acl",
            "/a",
            "--max-inflight",
            "65535",
            "--max-keepalive",
            "120",
            "--no-retain",
            "--log-level",
            "debug",
            "--bind",
            "0.0.0.0:1883",
            "--tls",
            "127.0.0.1:8883",
            "--ws",
            "0.0.0.0:9001",
        ];
        assert_eq!(args, expected);
        // mosquitto's persistence: a directory (the current one by default).
        std::fs::write(
            &file,
            "persistence true\npersistence_location /var/lib/b/\n",
        )
        .unwrap();
        assert_eq!(args_from_conf(f).unwrap(), ["--persist", "/var/lib/b/"]);
        std::fs::write(&file, "persistence true\n").unwrap();
        assert_eq!(args_from_conf(f).unwrap(), ["--persist", "."]);
        std::fs::write(&file, "listener 1883\nautosave_interval 10\n").unwrap();
        let err = args_from_conf(f).unwrap_err();
        assert!(
            err.contains(":2: unsupported key `autosave_interval`"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
