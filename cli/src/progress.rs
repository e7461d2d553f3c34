//! Progress on stderr while an intent waits on retries, from the client's
//! events.

use oncely::{Event, EventKind};

use crate::console;

/// Whether progress lines name their intent (`resume` runs many at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// One intent: its name goes without saying.
    Implicit,
    /// Many intents: each line starts with the intent's name.
    PerLine,
}

/// An event handler printing one line per noteworthy event.
pub fn reporter(naming: Naming) -> impl Fn(&Event) + Send + Sync + 'static {
    move |event| {
        if let Some(line) = describe(&event.intent, &event.kind, naming) {
            console::error(format_args!("{line}"));
        }
    }
}

/// The line for `event`, if it deserves one. The first attempt, the
/// settlement and failures go without a progress line: the final report
/// covers them.
fn describe(intent: &str, kind: &EventKind, naming: Naming) -> Option<String> {
    let line = match kind {
        EventKind::Attempt { number } if *number > 1 => format!("attempt {number}…"),
        // "failed" would misreport a server still at work on the key.
        EventKind::RetryScheduled {
            attempt,
            delay,
            status: Some(409),
            ..
        } => format!(
            "attempt {attempt}: the server is still working on this key (status 409); next try in {:.1} s",
            delay.as_secs_f64()
        ),
        EventKind::RetryScheduled {
            attempt,
            delay,
            reason,
            ..
        } => format!(
            "attempt {attempt} failed ({reason}); next try in {:.1} s",
            delay.as_secs_f64()
        ),
        EventKind::Joined => "joined the request already in flight for this intent".to_owned(),
        EventKind::Replayed => {
            "already settled: replaying the recorded outcome, nothing sent".to_owned()
        }
        _ => return None,
    };
    Some(match naming {
        Naming::Implicit => line,
        Naming::PerLine => format!("{intent}: {line}"),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn describe(kind: &EventKind, naming: Naming) -> Option<String> {
        super::describe("order-42", kind, naming)
    }

    #[test]
    fn describes_retries_and_later_attempts() {
        let retry = EventKind::RetryScheduled {
            attempt: 2,
            delay: Duration::from_millis(1260),
            reason: "status 503".to_owned(),
            status: Some(503),
        };
        assert_eq!(
            describe(&retry, Naming::Implicit).as_deref(),
            Some("attempt 2 failed (status 503); next try in 1.3 s")
        );
        let busy = EventKind::RetryScheduled {
            attempt: 1,
            delay: Duration::from_secs(1),
            reason: "status 409".to_owned(),
            status: Some(409),
        };
        assert_eq!(
            describe(&busy, Naming::Implicit).as_deref(),
            Some(
                "attempt 1: the server is still working on this key (status 409); next try in 1.0 s"
            )
        );
        let third = EventKind::Attempt { number: 3 };
        assert_eq!(
            describe(&third, Naming::PerLine).as_deref(),
            Some("order-42: attempt 3…")
        );
    }

    #[test]
    fn stays_quiet_about_the_first_attempt_and_the_end() {
        assert_eq!(
            describe(&EventKind::Attempt { number: 1 }, Naming::Implicit),
            None
        );
        assert_eq!(describe(&EventKind::Created, Naming::Implicit), None);
        let settled = EventKind::Settled {
            status: 201,
            attempts: 1,
        };
        assert_eq!(describe(&settled, Naming::Implicit), None);
    }
}
