//! `mqtt pub`, as mosquitto_pub: one message (`-m`, `-f`, `-s`, `-n`), perhaps repeated,
//! or one per line of stdin (`-l`); then a clean disconnect.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use mqtt_session::client::Message;
use mqtt_session::driver::{AsyncClient, ClientError};
use mqtt_session::mqtt_codec::{Bytes, PublishProperties, QoS, TopicName};

use crate::Exit;
use crate::args::Connection;
use crate::connection::{self, Role, reason_string};

/// mosquitto_pub's flags.
#[derive(Debug, clap::Args)]
#[command(disable_help_flag = true)]
pub(crate) struct PubArgs {
    #[command(flatten)]
    pub(crate) connection: Connection,
    /// Topic to publish to.
    #[arg(short, long, allow_hyphen_values = true)]
    topic: Option<String>,
    /// The message.
    #[arg(short, long, group = "payload", allow_hyphen_values = true)]
    message: Option<OsString>,
    /// Send the contents of a file as the message.
    #[arg(short, long, group = "payload")]
    file: Option<PathBuf>,
    /// Send all of stdin as the message.
    #[arg(short = 's', long = "stdin-file", group = "payload")]
    stdin_file: bool,
    /// Send each line of stdin as a message.
    #[arg(short = 'l', long = "stdin-line", group = "payload")]
    stdin_line: bool,
    /// Send an empty message.
    #[arg(short = 'n', long = "null-message", group = "payload")]
    null_message: bool,
    /// Retain the message.
    #[arg(short, long)]
    retain: bool,
    /// Publish the message this many times (-m, -f, -s, -n).
    #[arg(long, default_value_t = 1, value_parser = crate::args::positive)]
    repeat: u32,
    /// Seconds to wait after each delivery before the next repeat.
    #[arg(long, default_value_t = 0.0, value_parser = delay)]
    repeat_delay: f64,
}

fn delay(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(d) if d >= 0.0 && d.is_finite() => Ok(d),
        _ => Err("--repeat-delay argument must be >=0.0.".into()),
    }
}

/// Where the payload comes from.
enum Source {
    Bytes(Bytes),
    Lines,
}

/// Publishes as the flags say.
pub(crate) async fn run(a: PubArgs) -> Result<(), Exit> {
    let prepared = connection::prepare(&a.connection, Role::Pub)?;
    let topic = a.topic.clone().or(prepared.url_topic.clone());
    let payload = crate::args::payload(a.message, a.file.as_deref(), a.stdin_file, a.null_message)?;
    let source = match payload {
        Some(bytes) => Some(Source::Bytes(bytes)),
        None => a.stdin_line.then_some(Source::Lines),
    };
    let (Some(topic), Some(source)) = (topic, source) else {
        return Err(Exit::usage(
            "Error: Both topic and message must be supplied.\n\nUse 'mqtt pub --help' to see usage.",
        ));
    };
    let topic = crate::args::publish_topic(topic)?;
    let publisher = Publisher {
        topic,
        qos: a.connection.qos,
        retain: a.retain,
        properties: prepared.publish_properties.clone(),
        quiet: a.connection.quiet,
    };

    let (client, _events) = connection::connect(&prepared).await?;
    match source {
        Source::Bytes(payload) => {
            for n in 0..a.repeat {
                if n > 0 && a.repeat_delay > 0.0 {
                    tokio::time::sleep(Duration::from_secs_f64(a.repeat_delay)).await;
                }
                publisher.publish(&client, payload.clone()).await?;
            }
        }
        Source::Lines => {
            let mut lines = stdin_lines();
            while let Some(line) = lines.recv().await {
                publisher
                    .publish(
                        &client,
                        line.map_err(|e| Exit::runtime(1, format!("Error: {e}")))?,
                    )
                    .await?;
            }
        }
    }
    // Stopped already means the connection ended after the last acknowledgement.
    let _ = client.disconnect().await;
    Ok(())
}

/// What every message of a run shares.
struct Publisher {
    topic: TopicName,
    qos: QoS,
    retain: bool,
    properties: PublishProperties,
    quiet: bool,
}

impl Publisher {
    /// Publishes one message and waits until the server has it (QoS 1/2) or the client
    /// has sent it (QoS 0). A refusal in the acknowledgement is a warning, as mosquitto_pub
    /// gives; a connection lost is the end.
    async fn publish(&self, client: &AsyncClient, payload: Bytes) -> Result<(), Exit> {
        let mut msg = Message::new(self.topic.clone(), payload)
            .with_qos(self.qos)
            .with_retain(self.retain);
        msg.properties = self.properties.clone();
        match client.publish(msg).await {
            Ok(Some(done)) if done.reason_code.is_error() => {
                if !self.quiet {
                    eprintln!(
                        "Warning: Publish {} failed: {}.",
                        done.packet_id.get(),
                        reason_string(done.reason_code)
                    );
                    if let Some(s) = &done.properties.reason_string {
                        eprintln!("{s}");
                    }
                }
                Ok(())
            }
            Ok(_) => Ok(()),
            Err(ClientError::Stopped | ClientError::Dropped(_)) => {
                Err(Exit::runtime(7, "Error: The connection was lost."))
            }
            Err(e) => Err(Exit::runtime(1, format!("Error: {e}."))),
        }
    }
}

/// The lines of stdin without their newline (the last one even without a newline), read
/// on a thread of their own, a few ahead of the publishing.
fn stdin_lines() -> tokio::sync::mpsc::Receiver<std::io::Result<Bytes>> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut stdin = std::io::stdin().lock();
        loop {
            let mut line = Vec::new();
            match stdin.read_until(b'\n', &mut line) {
                Ok(0) => return,
                Ok(_) => {
                    if line.last() == Some(&b'\n') {
                        line.pop();
                    }
                    if tx.blocking_send(Ok(line.into())).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    rx
}
