//! The command-line client (`mqtt pub|sub|rr`) against mosquitto's own clients: each case
//! is a mosquitto_pub, mosquitto_sub or mosquitto_rr command line (the man pages'
//! EXAMPLES, and one per flag that shapes the output or the exit status), run once with
//! our program and once with mosquitto's, against our broker and against a real mosquitto
//! broker. The two must print the same bytes on stdout and exit with the same status;
//! where a message goes through the broker, a mosquitto_sub watching the topics (the same
//! for both runs) must print the same bytes too.
//!
//! mosquitto_pub, mosquitto_sub, mosquitto_rr and mosquitto must be installed (Debian:
//! mosquitto-clients, mosquitto); the test fails, saying so, where they are not. Every
//! process is on 127.0.0.1 and is killed after a time limit.
#![allow(clippy::disallowed_methods)] // a test may read the clock

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long any one program may run.
const LIMIT: Duration = Duration::from_secs(10);
/// How long a subscriber is given to subscribe before a message is published to it.
const SETTLE: Duration = Duration::from_millis(500);

/// Which client programs a run uses for the command line under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tools {
    Ours,
    Mosquitto,
}

mod cases;

use cases::{Case, Watch, cases};

/// What a run printed and how it ended.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    status: Option<i32>,
    stdout: Vec<u8>,
    watched: Vec<u8>,
}

/// A broker on a free port, killed when dropped.
struct Broker {
    name: &'static str,
    child: Child,
    port: u16,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_listening(b: Broker) -> Broker {
    let addr: SocketAddr = format!("127.0.0.1:{}", b.port).parse().unwrap();
    for _ in 0..200 {
        if TcpStream::connect(addr).is_ok() {
            return b;
        }
        thread::sleep(Duration::from_millis(25));
    }
    panic!("{} did not listen on {addr}", b.name);
}

/// Our broker and mosquitto, each accepting anonymous clients and alice:secret.
fn brokers(dir: &Path) -> Vec<Broker> {
    let users = dir.join("passwd");
    let made = Command::new(env!("CARGO_BIN_EXE_mqtt-broker"))
        .arg("passwd")
        .arg(&users)
        .args(["alice", "secret"])
        .status()
        .unwrap();
    assert!(made.success(), "mqtt-broker passwd failed");
    let port = free_port();
    let ours = Command::new(env!("CARGO_BIN_EXE_mqtt-broker"))
        .args(["--bind", &format!("127.0.0.1:{port}"), "--users"])
        .arg(&users)
        .args(["--allow-anonymous", "true", "--log-level", "error"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let ours = wait_listening(Broker {
        name: "mqtt-broker",
        child: ours,
        port,
    });
    let port = free_port();
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npassword_file {}\n",
            users.display()
        ),
    )
    .unwrap();
    let mosquitto = Command::new(mosquitto_path())
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mosquitto = wait_listening(Broker {
        name: "mosquitto",
        child: mosquitto,
        port,
    });
    vec![ours, mosquitto]
}

fn mosquitto_path() -> PathBuf {
    ["/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .or_else(|| which("mosquitto"))
        .expect("mosquitto (the broker) is not installed: apt-get install mosquitto")
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// A program running under the time limit, its stdout collected.
struct Running {
    child: Child,
    stdout: thread::JoinHandle<Vec<u8>>,
    started: Instant,
}

fn start(program: &Path, args: &[String], stdin: &[u8]) -> Running {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
    let mut input = child.stdin.take().unwrap();
    let bytes = stdin.to_vec();
    thread::spawn(move || {
        let _ = input.write_all(&bytes);
    });
    let mut out = child.stdout.take().unwrap();
    let stdout = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    Running {
        child,
        stdout,
        started: Instant::now(),
    }
}

impl Running {
    /// Waits for the exit (killing the program after [`LIMIT`]): the status (`None` if
    /// killed) and stdout.
    fn finish(mut self) -> (Option<i32>, Vec<u8>) {
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s.code();
            }
            if self.started.elapsed() > LIMIT {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            thread::sleep(Duration::from_millis(10));
        };
        (status, self.stdout.join().unwrap())
    }
}

/// The program for `command` (`pub`, `sub` or `rr`) of these tools, and its arguments.
fn program(tools: Tools, command: &str, args: Vec<String>) -> (PathBuf, Vec<String>) {
    match tools {
        Tools::Ours => {
            let mut all = vec![command.to_string()];
            all.extend(args);
            (PathBuf::from(env!("CARGO_BIN_EXE_mqtt")), all)
        }
        Tools::Mosquitto => (mosquitto_client(command), args),
    }
}

fn mosquitto_client(command: &str) -> PathBuf {
    let name = format!("mosquitto_{command}");
    which(&name).unwrap_or_else(|| {
        panic!(
            "{name} is not installed (apt-get install mosquitto-clients): nothing to compare with"
        )
    })
}

/// Runs `case` with `tools` against `broker`.
fn run(case: &Case, tools: Tools, broker: &Broker, prefix: &str, bin: &Path) -> Outcome {
    let fill = |args: &[&str]| -> Vec<String> {
        args.iter()
            .map(|a| {
                a.replace("{T}", prefix)
                    .replace("{BIN}", &bin.display().to_string())
                    .replace("{DEAD}", &free_port().to_string())
            })
            .collect()
    };
    let address = |args: &[&str]| -> Vec<String> {
        let mut v = vec![
            "-h".into(),
            "127.0.0.1".into(),
            "-p".into(),
            broker.port.to_string(),
        ];
        v.extend(fill(args));
        v
    };
    let neutral_pub = |args: &[&str]| {
        let (_, out) = start(&mosquitto_client("pub"), &address(args), b"").finish();
        assert!(out.is_empty());
    };
    for b in case.before {
        neutral_pub(b);
    }
    let watch = |args: &[&str]| start(&mosquitto_client("sub"), &address(args), b"");
    let mut watcher = match case.watch {
        Some((args, Watch::Before)) => {
            let w = watch(args);
            thread::sleep(SETTLE);
            Some(w)
        }
        _ => None,
    };
    let responder = case.respond.map(|answer| {
        let request = watch(&["-t", "{T}/req", "-C", "1", "-W", "5"]);
        let answer_args = address(&["-t", "{T}/resp", "-m", answer]);
        let publisher = mosquitto_client("pub");
        thread::spawn(move || {
            let (status, _) = request.finish();
            if status == Some(0) {
                let _ = start(&publisher, &answer_args, b"").finish();
            }
        })
    });
    if responder.is_some() {
        thread::sleep(SETTLE);
    }
    let (command, args) = case.line.split_first().unwrap();
    let (program, args) = program(tools, command, address(args));
    let subject = start(&program, &args, case.stdin);
    if !case.feed.is_empty() {
        thread::sleep(SETTLE);
        for f in case.feed {
            neutral_pub(f);
        }
    }
    let (status, stdout) = subject.finish();
    if let Some((args, Watch::After)) = case.watch {
        watcher = Some(watch(args));
    }
    let watched = watcher.map(|w| w.finish().1).unwrap_or_default();
    if let Some(r) = responder {
        r.join().unwrap();
    }
    Outcome {
        status,
        stdout,
        watched,
    }
}

/// Every case, with both tools, against one broker: the differences found.
fn differences(broker: &Broker, bin: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for (n, case) in cases().iter().enumerate() {
        let ours = run(case, Tools::Ours, broker, &format!("cli/{n:02}/ours"), bin);
        let theirs = run(
            case,
            Tools::Mosquitto,
            broker,
            &format!("cli/{n:02}/mosq"),
            bin,
        );
        // The topics differ by run (in the same number of bytes); nothing else may.
        let ours = without(&ours, &format!("cli/{n:02}/ours"));
        let theirs = without(&theirs, &format!("cli/{n:02}/mosq"));
        let line = case.line.join(" ");
        if ours != theirs {
            found.push(format!(
                "{} on {}: `{line}`\n  ours:      {}\n  mosquitto: {}",
                case.name,
                broker.name,
                show(&ours),
                show(&theirs)
            ));
        } else if case.status.is_some() && ours.status != case.status {
            found.push(format!(
                "{} on {}: `{line}`: both exit with {:?}, expected {:?}",
                case.name, broker.name, ours.status, case.status
            ));
        } else if (case.watch.is_some() && theirs.watched.is_empty())
            || ((!case.feed.is_empty() || case.respond.is_some()) && theirs.stdout.is_empty())
        {
            // Equal, but only because nothing happened: the case itself is broken.
            found.push(format!(
                "{} on {}: `{line}`: mosquitto's own run printed nothing: {}",
                case.name,
                broker.name,
                show(&theirs)
            ));
        } else if ours.status.is_none() {
            found.push(format!(
                "{} on {}: both ran out of time",
                case.name, broker.name
            ));
        }
    }
    found
}

/// `o` with its run's topic prefix, as text and in hex, replaced by one the same for all.
fn without(o: &Outcome, prefix: &str) -> Outcome {
    let clean = |b: &[u8]| {
        let b = replace(b, prefix.as_bytes(), b"PREFIX/xxxx");
        replace(&b, &hex(prefix), &hex("PREFIX/xxxx"))
    };
    Outcome {
        status: o.status,
        stdout: clean(&o.stdout),
        watched: clean(&o.watched),
    }
}

fn hex(s: &str) -> Vec<u8> {
    s.bytes()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        .into_bytes()
}

fn replace(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if !from.is_empty() && haystack[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

fn show(o: &Outcome) -> String {
    format!(
        "status {:?}, stdout {:?}, watched {:?}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.watched)
    )
}

/// The cases above, ours against mosquitto's, on both brokers (one thread each).
#[test]
fn same_output_and_status_as_mosquitto_clients() {
    for c in ["pub", "sub", "rr"] {
        mosquitto_client(c);
    }
    let dir = std::env::temp_dir().join(format!("mqtt-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = dir.join("bytes.bin");
    std::fs::write(&bin, (0..=255u8).collect::<Vec<_>>()).unwrap();
    let brokers = brokers(&dir);
    let found: Vec<String> = thread::scope(|s| {
        let runs: Vec<_> = brokers
            .iter()
            .map(|b| s.spawn(|| differences(b, &bin)))
            .collect();
        runs.into_iter().flat_map(|r| r.join().unwrap()).collect()
    });
    drop(brokers);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        found.is_empty(),
        "{} difference(s) from mosquitto's clients:\n{}",
        found.len(),
        found.join("\n")
    );
}
