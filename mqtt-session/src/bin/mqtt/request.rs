//! `mqtt rr`, as mosquitto_rr: subscribe to the response topic (`-e`), publish the request
//! with that Response Topic (5.0), print the first message that comes back, and exit.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use mqtt_session::client::Message;
use mqtt_session::driver::{AsyncClient, Events, Notification};
use mqtt_session::mqtt_codec::{RetainHandling, SubscriptionOptions, TopicFilter, TopicName};

use crate::Exit;
use crate::args::Connection;
use crate::connection::{self, Role, reason_string};
use crate::output::{Output, check_format};
use crate::subscribe::TIMED_OUT;

/// mosquitto_rr's flags.
#[derive(Debug, clap::Args)]
#[command(disable_help_flag = true)]
pub(crate) struct RrArgs {
    #[command(flatten)]
    pub(crate) connection: Connection,
    /// Topic to publish the request to.
    #[arg(short, long, allow_hyphen_values = true)]
    topic: Option<String>,
    /// Response topic: subscribed to, and sent as the request's Response Topic.
    #[arg(short = 'e', allow_hyphen_values = true)]
    response_topic: Option<String>,
    /// The request message.
    #[arg(short, long, group = "payload", allow_hyphen_values = true)]
    message: Option<OsString>,
    /// Send the contents of a file as the request.
    #[arg(short, long, group = "payload")]
    file: Option<PathBuf>,
    /// Send all of stdin as the request.
    #[arg(short = 's', long = "stdin-file", group = "payload")]
    stdin_file: bool,
    /// Send an empty request.
    #[arg(short = 'n', long = "null-message", group = "payload")]
    null_message: bool,
    /// Give up after this many seconds (status 27).
    #[arg(short = 'W', value_parser = crate::args::positive)]
    timeout: Option<u32>,
    /// Print "topic payload".
    #[arg(short, long)]
    verbose: bool,
    /// Print no newline after the response.
    #[arg(short = 'N')]
    no_eol: bool,
    /// Ask a 5.0 server not to send a retained message on the response topic.
    #[arg(short = 'R')]
    no_retained: bool,
    /// Output format, as `mqtt sub -F`.
    #[arg(short = 'F', allow_hyphen_values = true)]
    format: Option<String>,
}

/// Sends the request and prints the response.
pub(crate) async fn run(a: RrArgs) -> Result<(), Exit> {
    if let Some(f) = &a.format {
        check_format(f).map_err(Exit::usage)?;
    }
    let prepared = connection::prepare(&a.connection, Role::Rr)?;
    let topic = a.topic.clone().or(prepared.url_topic.clone());
    let payload = crate::args::payload(a.message, a.file.as_deref(), a.stdin_file, a.null_message)?;
    let (Some(topic), Some(payload), Some(response)) = (topic, payload, a.response_topic) else {
        return Err(Exit::usage(
            "Error: All of topic, message, and response topic must be supplied.\n\nUse 'mqtt rr --help' to see usage.",
        ));
    };
    let request_topic = crate::args::publish_topic(topic)?;
    let (Ok(response_name), Ok(response_filter)) = (
        TopicName::new(response.clone()),
        TopicFilter::new(response.clone()),
    ) else {
        return Err(Exit::usage(format!(
            "Error: Invalid response topic '{response}', does it contain '+' or '#'?"
        )));
    };
    let mut request = Message::new(request_topic, payload).with_qos(a.connection.qos);
    request.properties = prepared.publish_properties.clone();
    if prepared.protocol.is_v5() {
        request.properties.response_topic = Some(response_name);
    }
    let options = SubscriptionOptions {
        qos: a.connection.qos,
        retain_handling: if a.no_retained && prepared.protocol.is_v5() {
            RetainHandling::DoNotSend
        } else {
            RetainHandling::SendAtSubscribe
        },
        ..SubscriptionOptions::default()
    };
    let output = Output {
        format: a.format.clone(),
        verbose: a.verbose,
        eol: !a.no_eol,
    };

    let timed_out = async {
        match a.timeout {
            Some(s) => tokio::time::sleep(Duration::from_secs(s.into())).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(timed_out);
    let (client, events) = tokio::select! {
        c = connection::connect(&prepared) => c?,
        () = &mut timed_out => return Err(Exit::runtime(TIMED_OUT, "Timed out")),
    };
    let result = tokio::select! {
        r = exchange(&client, events, (response_filter, options), request, &output, a.connection.quiet) => r,
        () = &mut timed_out => Err(Exit::runtime(TIMED_OUT, "Timed out")),
        _ = tokio::signal::ctrl_c() => Ok(()),
    };
    let _ = client.disconnect().await;
    result
}

/// Subscribes, publishes the request once the SUBACK grants the subscription, and prints
/// the first message that arrives.
async fn exchange(
    client: &AsyncClient,
    mut events: Events,
    subscription: (TopicFilter, SubscriptionOptions),
    request: Message,
    output: &Output,
    quiet: bool,
) -> Result<(), Exit> {
    let lost = || Exit::runtime(7, "Error: The connection was lost.");
    let subscribed = {
        let client = client.clone();
        async move { client.subscribe_many(vec![subscription]).await }
    };
    tokio::pin!(subscribed);
    let mut sent = false;
    loop {
        tokio::select! {
            s = &mut subscribed, if !sent => {
                let s = s.map_err(|_| lost())?;
                let code = s.filters.first().map(|f| f.2).unwrap_or_default();
                if code.is_error() {
                    // mosquitto_rr says why and exits with 0.
                    if !quiet {
                        eprintln!("{}", reason_string(code));
                    }
                    return Ok(());
                }
                sent = true;
                let client = client.clone();
                let request = request.clone();
                tokio::spawn(async move { client.publish(request).await });
            }
            n = events.recv() => match n {
                Some(Notification::Message(m)) => {
                    let _ = output.print(&m);
                    return Ok(());
                }
                Some(_) => {}
                None => return Err(lost()),
            },
        }
    }
}
