//! A small MQTT command-line client on tokio, driving the sans-IO `mqtt_session::client`:
//!
//! ```text
//! client [--host H] [--port P] [--id ID] [--qos 0|1|2] [--retain]
//!        [--protocol 3.1.1|5|5-or-3.1.1] [--username U] [--password P]
//!        [--will-topic T --will-payload M] pub TOPIC MESSAGE
//! client [same options] sub [--count N] FILTER...
//! ```

mod cli;
mod driver;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || args[0] == "--help" || args[0] == "-h" {
        println!("{}", cli::USAGE);
        return;
    }
    // The usage is printed for a usage error only; any other error is one line.
    if let Err(e) = cli::check(&args) {
        eprintln!("client: {e}\n{}", cli::USAGE);
        std::process::exit(2);
    }
    let mut out = std::io::stdout();
    if let Err(e) = cli::run(&args, &mut out, None).await {
        eprintln!("client: {e}");
        std::process::exit(1);
    }
}
