//! The retry options of the commands that send.

use std::time::Duration;

use clap::Args;
use oncely::RetryPolicy;

/// `--max-attempts` and `--deadline`.
#[derive(Debug, Args)]
pub struct RetryArgs {
    /// Attempts per run, the first included (answers 409 "still in progress"
    /// do not count) [default: 8]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_attempts: Option<u32>,
    /// Seconds to keep trying, all attempts and waits included [default: 120]
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    deadline: Option<Duration>,
}

impl RetryArgs {
    /// The library's default policy with the options applied.
    pub fn policy(&self) -> RetryPolicy {
        let mut policy = RetryPolicy::default();
        if let Some(max_attempts) = self.max_attempts {
            policy.max_attempts = max_attempts;
        }
        if let Some(deadline) = self.deadline {
            policy.deadline = deadline;
        }
        policy
    }
}

/// A positive number of seconds, fractions allowed (`2.5`).
fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(seconds.is_finite() && seconds > 0.0) {
        return Err(format!(
            "{text:?}: the deadline must be a positive number of seconds"
        ));
    }
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("{text:?}: too long a deadline"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_whole_and_fractional_seconds() {
        assert_eq!(parse_seconds("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_seconds("2.5"), Ok(Duration::from_millis(2500)));
        assert!(parse_seconds("0").is_err());
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("inf").is_err());
        assert!(parse_seconds("soon").is_err());
        assert!(parse_seconds("1e300").is_err());
    }
}
