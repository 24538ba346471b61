//! `mqtt sub`, as mosquitto_sub: subscribe, print what arrives, and stop after `-C`
//! messages, after `-W` seconds (exit status 27), on Ctrl-C, or at once with `-E`.

use std::time::Duration;

use mqtt_session::client::{Message, Subscribed};
use mqtt_session::driver::{AsyncClient, ClientError, Events, Notification};
use mqtt_session::mqtt_codec::{
    Bytes, Publish, QoS, RetainHandling, SubscriptionOptions, TopicFilter,
};
use tokio::task::JoinSet;

use crate::Exit;
use crate::args::Connection;
use crate::connection::{self, Role};
use crate::output::{Output, check_format};

/// MOSQ_ERR_TIMEOUT, mosquitto_sub's exit status when -W runs out.
pub(crate) const TIMED_OUT: u8 = 27;

/// mosquitto_sub's flags.
#[derive(Debug, clap::Args)]
#[command(disable_help_flag = true)]
pub(crate) struct SubArgs {
    #[command(flatten)]
    pub(crate) connection: Connection,
    /// Topic filter to subscribe to (repeatable).
    #[arg(short, long = "topic", allow_hyphen_values = true)]
    topics: Vec<String>,
    /// Do not print messages whose topic matches this filter (repeatable).
    #[arg(short = 'T', long = "filter-out", allow_hyphen_values = true)]
    filter_out: Vec<String>,
    /// Unsubscribe from this filter after subscribing (repeatable).
    #[arg(short = 'U', long = "unsubscribe", allow_hyphen_values = true)]
    unsubscribe: Vec<String>,
    /// Exit after printing this many messages.
    #[arg(short = 'C', value_parser = crate::args::positive)]
    count: Option<u32>,
    /// Exit after this many seconds (status 27).
    #[arg(short = 'W', value_parser = crate::args::positive)]
    timeout: Option<u32>,
    /// Print "topic payload".
    #[arg(short, long)]
    verbose: bool,
    /// Print no newline after each message.
    #[arg(short = 'N')]
    no_eol: bool,
    /// Do not print retained (stale) messages.
    #[arg(short = 'R')]
    no_retained: bool,
    /// Output format (see the README).
    #[arg(short = 'F', allow_hyphen_values = true)]
    format: Option<String>,
    /// Exit once the subscriptions are acknowledged.
    #[arg(short = 'E')]
    exit_after_subscribe: bool,
    /// Print only retained messages; exit at the first that is not.
    #[arg(long)]
    retained_only: bool,
    /// Clear each retained message received (publish an empty retained message).
    #[arg(long)]
    remove_retained: bool,
    /// Retain As Published (5.0): the RETAIN flag as the publisher set it.
    #[arg(long)]
    retain_as_published: bool,
}

/// What the loop needs of the flags.
struct Plan {
    subscriptions: Vec<(TopicFilter, SubscriptionOptions)>,
    unsubscribe: Vec<TopicFilter>,
    filter_out: Vec<TopicFilter>,
    output: Output,
    count: Option<u32>,
    no_retained: bool,
    retained_only: bool,
    remove_retained: bool,
    exit_after_subscribe: bool,
    debug: bool,
    quiet: bool,
}

/// Subscribes and prints as the flags say.
pub(crate) async fn run(a: SubArgs) -> Result<(), Exit> {
    if let Some(f) = &a.format {
        check_format(f).map_err(Exit::usage)?;
    }
    let prepared = connection::prepare(&a.connection, Role::Sub)?;
    let mut topics = a.topics.clone();
    topics.extend(prepared.url_topic.clone());
    if topics.is_empty() {
        return Err(Exit::usage(
            "Error: You must specify a topic to subscribe to.\n\nUse 'mqtt sub --help' to see usage.",
        ));
    }
    if a.no_retained && a.retained_only {
        return Err(Exit::usage(
            "Error: Combining '-R' and '--retained-only' makes no sense.",
        ));
    }
    let filter = |t: &String, what: &str| {
        TopicFilter::new(t.clone()).map_err(|_| {
            Exit::usage(format!(
                "Error: Invalid {what} topic '{t}', are all '+' and '#' wildcards correct?"
            ))
        })
    };
    let v5 = prepared.protocol.is_v5();
    if a.retain_as_published && !v5 {
        return Err(Exit::usage(
            "Error: --retain-as-published needs MQTT 5.0 (-V mqttv5).",
        ));
    }
    let options = SubscriptionOptions {
        qos: a.connection.qos,
        retain_as_published: a.retain_as_published,
        // As mosquitto_sub: -R asks a 5.0 server not to send retained messages at all.
        retain_handling: if a.no_retained && v5 {
            RetainHandling::DoNotSend
        } else {
            RetainHandling::SendAtSubscribe
        },
        ..SubscriptionOptions::default()
    };
    let plan = Plan {
        subscriptions: topics
            .iter()
            .map(|t| Ok((filter(t, "subscription")?, options)))
            .collect::<Result<_, Exit>>()?,
        unsubscribe: a
            .unsubscribe
            .iter()
            .map(|t| filter(t, "unsubscribe"))
            .collect::<Result<_, _>>()?,
        filter_out: a
            .filter_out
            .iter()
            .map(|t| filter(t, "filter"))
            .collect::<Result<_, _>>()?,
        output: Output {
            format: a.format.clone(),
            verbose: a.verbose,
            eol: !a.no_eol,
        },
        count: a.count,
        no_retained: a.no_retained,
        retained_only: a.retained_only,
        remove_retained: a.remove_retained,
        exit_after_subscribe: a.exit_after_subscribe,
        debug: a.connection.debug,
        quiet: a.connection.quiet,
    };

    // -W counts from the start of the connection, as mosquitto_sub's alarm does.
    let deadline = a
        .timeout
        .map(|s| tokio::time::Instant::now() + Duration::from_secs(s.into()));
    let timed_out = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(timed_out);
    let (client, events) = tokio::select! {
        c = connection::connect(&prepared) => c?,
        () = &mut timed_out => return Err(Exit::runtime(TIMED_OUT, "Timed out")),
    };
    let result = tokio::select! {
        r = receive(&client, events, &plan) => r,
        () = &mut timed_out => Err(Exit::runtime(TIMED_OUT, "Timed out")),
        _ = tokio::signal::ctrl_c() => Ok(()),
    };
    let _ = client.disconnect().await;
    result
}

/// Subscribes (again after each reconnection, as mosquitto_sub does) and prints messages
/// until the flags say to stop.
async fn receive(client: &AsyncClient, mut events: Events, plan: &Plan) -> Result<(), Exit> {
    let mut printed = 0u32;
    let mut clearing = JoinSet::new();
    let mut subscribing = Some(subscribe(client.clone(), plan));
    loop {
        let note = tokio::select! {
            n = events.recv() => n,
            done = async {
                match &mut subscribing {
                    Some(s) => s.await,
                    None => std::future::pending().await,
                }
            } => {
                subscribing = None;
                match done {
                    Ok(true) if plan.exit_after_subscribe => break,
                    Ok(true) => continue,
                    // Every subscription refused: mosquitto_sub says so and exits with 0.
                    Ok(false) => break,
                    Err(e) => return Err(e),
                }
            }
        };
        match note {
            Some(Notification::Message(m)) => {
                if plan.retained_only && !m.retain {
                    break;
                }
                if m.retain && plan.no_retained {
                    continue;
                }
                if plan.filter_out.iter().any(|f| f.matches(&m.topic)) {
                    continue;
                }
                if plan.remove_retained && m.retain {
                    clearing.spawn(clear_retained(client.clone(), m.clone()));
                }
                if plan.output.print(&m).is_err() {
                    // stdout closed (a pipe's reader gone): stop, as mosquitto_sub does.
                    break;
                }
                printed += 1;
                if plan.count.is_some_and(|c| printed >= c) {
                    break;
                }
            }
            Some(Notification::Connected(c)) => {
                if !c.session_present {
                    subscribing = Some(subscribe(client.clone(), plan));
                }
            }
            Some(_) => {}
            None => return Err(Exit::runtime(7, "Error: The connection was lost.")),
        }
    }
    // Each message cleared is acknowledged before the disconnect.
    while clearing.join_next().await.is_some() {}
    Ok(())
}

/// The SUBSCRIBE (and UNSUBSCRIBE of `-U`): whether any subscription was granted.
fn subscribe(
    client: AsyncClient,
    plan: &Plan,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<bool, Exit>>>> {
    let subscriptions = plan.subscriptions.clone();
    let unsubscribe = plan.unsubscribe.clone();
    let (debug, quiet) = (plan.debug, plan.quiet);
    Box::pin(async move {
        let stopped = |e: ClientError| match e {
            ClientError::Subscribe(e) => Exit::runtime(1, format!("Error: {e}.")),
            _ => Exit::runtime(7, "Error: The connection was lost."),
        };
        let granted: Subscribed = client
            .subscribe_many(subscriptions)
            .await
            .map_err(stopped)?;
        let codes: Vec<String> = granted
            .filters
            .iter()
            .map(|(_, _, rc)| rc.0.to_string())
            .collect();
        if debug && !quiet {
            println!(
                "Subscribed (mid: {}): {}",
                granted.packet_id.get(),
                codes.join(", ")
            );
        }
        let any = granted.filters.iter().any(|(_, _, rc)| !rc.is_error());
        if !any {
            if !quiet {
                eprintln!("All subscription requests were denied.");
            }
            return Ok(false);
        }
        if !unsubscribe.is_empty() {
            client.unsubscribe(unsubscribe).await.map_err(stopped)?;
        }
        Ok(true)
    })
}

/// `--remove-retained`: an empty retained message at QoS 1 on the topic of `m`.
async fn clear_retained(client: AsyncClient, m: Publish) {
    let msg = Message::new(m.topic, Bytes::new())
        .with_qos(QoS::AtLeastOnce)
        .with_retain(true);
    let _ = client.publish(msg).await;
}
