//! Where output goes: results to stdout, lines for people to stderr. Neither
//! panics when the stream is closed (`println!` would).

use std::fmt;
use std::io::{self, Write};

use crate::exit::{Exit, Failure};

/// Writes one `oncely: ...` line to stderr; a closed stderr is ignored, there
/// is nowhere left to complain.
pub fn error(message: fmt::Arguments<'_>) {
    let _ = writeln!(io::stderr().lock(), "oncely: {message}");
}

/// Writes `bytes` to stdout as they are.
pub fn out(bytes: &[u8]) -> Result<(), Failure> {
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::new(Exit::Other, format!("cannot write to stdout: {e}")))
}

/// Writes `line` and a newline to stdout.
pub fn out_line(line: &str) -> Result<(), Failure> {
    let mut text = String::with_capacity(line.len() + 1);
    text.push_str(line);
    text.push('\n');
    out(text.as_bytes())
}
