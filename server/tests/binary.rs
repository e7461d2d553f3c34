//! The `oncely-server` program: flags, the ready line, clean exit on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const BIN: &str = env!("CARGO_BIN_EXE_oncely-server");

#[test]
fn help_prints_usage() -> TestResult {
    let out = Command::new(BIN).arg("--help").output()?;
    assert!(out.status.success());
    let usage = String::from_utf8(out.stdout)?;
    assert!(usage.starts_with("usage: oncely-server"), "{usage}");
    assert!(usage.contains("--retention-secs"), "{usage}");
    assert!(usage.contains("--lease-secs"), "{usage}");
    Ok(())
}

#[test]
fn a_lease_must_be_a_whole_number_of_seconds_from_one() -> TestResult {
    for bad in ["0", "-1", "1.5", "ten"] {
        let out = Command::new(BIN).args(["--lease-secs", bad]).output()?;
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let stderr = String::from_utf8(out.stderr)?;
        assert!(stderr.contains("--lease-secs must be"), "{bad}: {stderr}");
    }
    Ok(())
}

#[test]
fn unknown_flag_is_a_usage_error() -> TestResult {
    let out = Command::new(BIN).arg("--bogus").output()?;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr)?.contains("--bogus"));
    Ok(())
}

#[cfg(unix)]
#[tokio::test]
async fn serves_until_sigterm() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut child = Command::new(BIN)
        .args(["--addr", "127.0.0.1:0", "--retention-secs", "120"])
        .args(["--lease-secs", "30", "--db"])
        .arg(dir.path().join("bin.db"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    })
    .await??;
    let url = line
        .trim()
        .strip_prefix("oncely reference server listening on ")
        .ok_or_else(|| format!("unexpected ready line {line:?}"))?
        .to_owned();

    let health: serde_json::Value = reqwest::get(format!("{url}/api/health"))
        .await?
        .json()
        .await?;
    assert_eq!(health["retention_seconds"], 120);

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait()).await??;
    assert!(exit.success(), "{exit:?}");
    Ok(())
}
