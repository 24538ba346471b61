//! `mqttdump`: the packet inspector. Decodes MQTT packets given as hex arguments (or as
//! hex or raw bytes on standard input) and prints one line per packet, as text or JSON.
//!
//! ```sh
//! cargo run -p mqtt-codec --example mqttdump --features serde -- 101000044d5154540402003c000474657374
//! ```
//!
//! `--help` tells the rest; the logic is in `lib.rs`, where the tests call it.

use std::io::{self, IsTerminal, Read};

#[path = "lib.rs"]
mod dump;

/// Standard input that, when a person is at a terminal, first says what it is waiting for.
struct Stdin {
    hinted: bool,
}

impl Read for Stdin {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let stdin = io::stdin();
        if !self.hinted {
            self.hinted = true;
            if stdin.is_terminal() {
                eprintln!(
                    "mqttdump: reading hex or raw bytes from standard input until end of file \
                     (Ctrl-D); see --help"
                );
            }
        }
        stdin.lock().read(buf)
    }
}

fn main() {
    let mut stdout = io::BufWriter::new(io::stdout().lock());
    let code = dump::run(
        std::env::args_os().skip(1),
        &mut Stdin { hinted: false },
        &mut stdout,
        &mut io::stderr().lock(),
    );
    // `run` has flushed stdout; `exit` skips destructors.
    drop(stdout);
    std::process::exit(code);
}
