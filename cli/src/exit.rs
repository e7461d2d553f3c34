//! Exit statuses: one per kind of outcome, so scripts can tell a conflict
//! from a server that never answered.

use std::process::ExitCode;

use oncely::ErrorKind;

/// The exit statuses, as `--help` lists them.
pub const EXIT_STATUS_HELP: &str = "\
Exit status:
  0  success (send, resume: settled with a 2xx status)
  1  settled with a non-2xx status (the body is printed, the reason on stderr);
     forget: no such intent, or its outcome is unknown (pending or given up)
     and --force was not given
  2  usage error
  3  conflict: the intent is recorded with another method, URL or body; nothing was sent
  4  rejected: the server refused the key as reused with another payload (422)
  5  gave up: attempts or deadline ran out; the intent stays recorded, and `send`
     again or `resume` retries it under the same key
  6  expired: older than the server's retention (24 h); never re-sent, `forget` it to start anew
  7  store: the store file cannot be opened, read or written
  8  invalid input: a bad intent name, method, URL or header, or an unreadable -d @FILE
  9  anything else (e.g. stdout closed)
 10  credentials needed: the intent was sent with headers that are never stored
     (Authorization, X-Account...: pass them again with -H), or the server refused
     who sent it after an earlier attempt may have landed; nothing decided, the
     intent stays unsettled, and `resume -H ...` sends it under the same key";

/// How the process ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    NotSuccess = 1,
    Conflict = 3,
    Rejected = 4,
    GaveUp = 5,
    Expired = 6,
    Store = 7,
    InvalidInput = 8,
    Other = 9,
    Credentials = 10,
}

/// The error kinds with a status of their own.
const ERROR_KINDS: [ErrorKind; 7] = [
    ErrorKind::Conflict,
    ErrorKind::Rejected,
    ErrorKind::GaveUp,
    ErrorKind::Expired,
    ErrorKind::Store,
    ErrorKind::InvalidInput,
    ErrorKind::Credentials,
];

impl Exit {
    /// The kind of error this status stands for, if one does: the inverse
    /// of [`Exit::of`].
    pub fn kind(self) -> Option<ErrorKind> {
        ERROR_KINDS.into_iter().find(|&kind| Exit::of(kind) == self)
    }

    /// The status for an oncely error of `kind`.
    pub fn of(kind: ErrorKind) -> Exit {
        match kind {
            ErrorKind::Conflict => Exit::Conflict,
            ErrorKind::Rejected => Exit::Rejected,
            ErrorKind::GaveUp => Exit::GaveUp,
            ErrorKind::Expired => Exit::Expired,
            ErrorKind::Store => Exit::Store,
            ErrorKind::InvalidInput => Exit::InvalidInput,
            ErrorKind::Credentials => Exit::Credentials,
            // `ErrorKind` is non-exhaustive: a kind added later is still a failure.
            _ => Exit::Other,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit as u8)
    }
}

/// A command that could not do its job: the line for stderr and the status.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
    /// The oncely error behind it, if any: its intent, key and last status
    /// are what `--json` reports.
    pub error: Option<oncely::Error>,
}

impl Failure {
    pub fn new(exit: Exit, message: impl Into<String>) -> Failure {
        Failure {
            exit,
            message: message.into(),
            error: None,
        }
    }
}

impl From<oncely::Error> for Failure {
    fn from(error: oncely::Error) -> Failure {
        Failure {
            exit: Exit::of(error.kind()),
            message: crate::report::error_message(&error),
            error: Some(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_kind_has_its_own_status() {
        let codes: Vec<u8> = ERROR_KINDS.iter().map(|&k| Exit::of(k) as u8).collect();
        assert_eq!(codes, vec![3, 4, 5, 6, 7, 8, 10]);
        for kind in ERROR_KINDS {
            assert_eq!(Exit::of(kind).kind(), Some(kind));
        }
        for exit in [Exit::Success, Exit::NotSuccess, Exit::Other] {
            assert_eq!(exit.kind(), None);
        }
    }
}
