//! The oncely reference server as a program, for demos and manual testing.
//!
//! Run with `cargo run -p oncely-server -- --www demo/`.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use oncely_server::{Database, Options, Server};

const USAGE: &str = "\
usage: oncely-server [--addr ADDR] [--db PATH|URL] [--www DIR] [--retention-secs N] [--lease-secs N]

  --addr ADDR           listen address (default 127.0.0.1:8080; env PORT sets its port)
  --db PATH|URL         SQLite ledger file (default ./oncely-server.db), or a
                        postgres://user:password@host:port/db URL: a PostgreSQL
                        database that several instances can share
  --www DIR             also serve this directory at /
  --retention-secs N    keep completed idempotency keys N seconds (default 86400)
  --lease-secs N        a key stays in progress N seconds for its request; then a
                        retry with the same body may take it over (default 10, at least 1)
  -h, --help            show this help
";

enum Command {
    Run(Options),
    Help,
}

fn parse(args: impl Iterator<Item = String>) -> Result<Command, String> {
    let port = match std::env::var("PORT") {
        Ok(port) => port
            .parse::<u16>()
            .map_err(|_| format!("PORT must be a port number, got {port:?}"))?,
        Err(_) => 8080,
    };
    let mut options = Options::new("oncely-server.db");
    options.addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut args = args;
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            return Ok(Command::Help);
        }
        let (name, inline) = match flag.split_once('=') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None => (flag, None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match name.as_str() {
            "--addr" => {
                let raw = value()?;
                options.addr = raw
                    .parse()
                    .map_err(|_| format!("--addr must be IP:PORT, got {raw:?}"))?;
            }
            "--db" => options.db = Database::parse(&value()?),
            "--www" => options.www = Some(PathBuf::from(value()?)),
            "--retention-secs" => {
                let raw = value()?;
                let secs = raw
                    .parse::<u64>()
                    .map_err(|_| format!("--retention-secs must be a number, got {raw:?}"))?;
                options.retention = Duration::from_secs(secs);
            }
            "--lease-secs" => {
                let raw = value()?;
                // Zero would let every retry take over a key at once: no 409 ever.
                let secs = raw
                    .parse::<u64>()
                    .ok()
                    .filter(|secs| *secs > 0)
                    .ok_or_else(|| {
                        format!("--lease-secs must be a whole number from 1, got {raw:?}")
                    })?;
                options.lease = Duration::from_secs(secs);
            }
            _ => return Err(format!("unknown argument {name:?}")),
        }
    }
    Ok(Command::Run(options))
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match parse(std::env::args().skip(1)) {
        Ok(Command::Run(options)) => options,
        Ok(Command::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("oncely-server: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let server = match Server::start(options).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("oncely-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout().lock();
    // A demo script waits for this line; if stdout is gone there is nobody to tell.
    let _ = writeln!(
        stdout,
        "oncely reference server listening on {}",
        server.url()
    );
    let _ = stdout.flush();
    drop(stdout);

    terminated().await;
    server.stop().await;
    ExitCode::SUCCESS
}

/// Resolves on Ctrl-C, or SIGTERM where there is one.
async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                eprintln!("oncely-server: cannot watch SIGTERM ({e}); Ctrl-C still works");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(args: &[&str]) -> Result<Options, String> {
        match parse(args.iter().map(|arg| (*arg).to_owned()))? {
            Command::Run(options) => Ok(options),
            Command::Help => Err("unexpected help".into()),
        }
    }

    #[test]
    fn the_lease_flag_sets_the_lease() -> Result<(), String> {
        assert_eq!(options(&[])?.lease, oncely_server::DEFAULT_LEASE);
        assert_eq!(
            options(&["--lease-secs", "30"])?.lease,
            Duration::from_secs(30)
        );
        assert_eq!(options(&["--lease-secs=2"])?.lease, Duration::from_secs(2));
        Ok(())
    }

    #[test]
    fn the_db_flag_takes_a_file_or_a_postgres_url() -> Result<(), String> {
        assert_eq!(
            options(&[])?.db,
            Database::Sqlite(PathBuf::from("oncely-server.db"))
        );
        assert_eq!(
            options(&["--db", "ledger.db"])?.db,
            Database::Sqlite(PathBuf::from("ledger.db"))
        );
        for url in ["postgres://u@h/db", "postgresql://u:p@h:5433/db"] {
            assert_eq!(
                options(&["--db", url])?.db,
                Database::Postgres(url.to_owned())
            );
        }
        Ok(())
    }
}
