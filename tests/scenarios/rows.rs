//! The rows of tests/scenarios.json, as the Rust runs read them (the file's
//! `about` says what each field means; pkg-tests/scenarios.test.mjs reads
//! the same file for the npm package).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// The whole file.
#[derive(Deserialize)]
pub struct Suite {
    pub defaults: Defaults,
    /// The request headers the wire record keeps (when present).
    pub wire_headers: Vec<String>,
    pub scenarios: Vec<Row>,
}

#[derive(Deserialize)]
pub struct Defaults {
    pub client: ClientOptions,
    pub request: RequestSpec,
    pub answer: Answer,
}

/// One scenario.
#[derive(Deserialize)]
pub struct Row {
    pub name: String,
    /// The executors that can run it; `None`: every one.
    pub executors: Option<Vec<String>>,
    /// Per executor, the parts of the transcript known to differ there, and why.
    #[serde(default)]
    pub known_drift: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default)]
    pub client: ClientOptions,
    /// The answers to the row's requests, in order.
    #[serde(default)]
    pub network: Vec<Answer>,
    pub steps: Vec<Step>,
    pub events: Vec<String>,
    pub wire: Vec<Value>,
}

impl Row {
    pub fn runs_on(&self, executor: &str) -> bool {
        self.executors
            .as_ref()
            .is_none_or(|names| names.iter().any(|name| name == executor))
    }

    /// What the row expects, in the shape of a [`Transcript`](crate::transcript::Transcript).
    pub fn expected(&self) -> Value {
        let mut results = Vec::new();
        for step in &self.steps {
            step.expected_results(&mut results);
        }
        serde_json::json!({ "results": results, "events": self.events, "wire": self.wire })
    }
}

/// The options of a client (every field over the defaults' own).
#[derive(Deserialize, Default, Clone)]
pub struct ClientOptions {
    pub user: Option<String>,
    /// The headers the credentials hook supplies; `None`: no hook.
    pub credentials: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub retry: RetryOptions,
    pub retention_ms: Option<u64>,
}

#[derive(Deserialize, Default, Clone)]
pub struct RetryOptions {
    pub max_attempts: Option<u32>,
    pub base_delay_ms: Option<u64>,
    pub max_delay_ms: Option<u64>,
    pub deadline_ms: Option<u64>,
}

impl ClientOptions {
    /// These options over `defaults`.
    pub fn over(&self, defaults: &ClientOptions) -> ClientOptions {
        let (retry, base) = (&self.retry, &defaults.retry);
        ClientOptions {
            user: self.user.clone().or_else(|| defaults.user.clone()),
            credentials: self
                .credentials
                .clone()
                .or_else(|| defaults.credentials.clone()),
            retry: RetryOptions {
                max_attempts: retry.max_attempts.or(base.max_attempts),
                base_delay_ms: retry.base_delay_ms.or(base.base_delay_ms),
                max_delay_ms: retry.max_delay_ms.or(base.max_delay_ms),
                deadline_ms: retry.deadline_ms.or(base.deadline_ms),
            },
            retention_ms: self.retention_ms.or(defaults.retention_ms),
        }
    }
}

/// A request, or (in a step) the fields that differ from the default one.
#[derive(Deserialize, Default, Clone)]
pub struct RequestSpec {
    pub method: Option<String>,
    pub url: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub body: Option<String>,
}

/// A request as a call makes it.
pub struct Request {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RequestSpec {
    /// This step's request: its fields over `defaults` (headers added),
    /// `{origin}` replaced.
    pub fn over(&self, defaults: &RequestSpec, origin: &str) -> Request {
        let mut headers = defaults.headers.clone();
        headers.extend(self.headers.clone());
        let text = |mine: &Option<String>, theirs: &Option<String>| {
            mine.as_ref()
                .or(theirs.as_ref())
                .cloned()
                .unwrap_or_default()
        };
        Request {
            method: text(&self.method, &defaults.method),
            url: text(&self.url, &defaults.url).replace("{origin}", origin),
            headers: headers.into_iter().collect(),
            body: text(&self.body, &defaults.body),
        }
    }
}

/// How the network answers one request.
#[derive(Deserialize, Clone)]
pub struct Answer {
    pub status: Option<u16>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: String,
    /// The server acted, and its answer never came back.
    #[serde(default)]
    pub lost: bool,
    /// The request never reached the server.
    #[serde(default)]
    pub unreachable: bool,
}

/// One step of a row.
#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Step {
    Send {
        intent: String,
        #[serde(default)]
        request: RequestSpec,
        expect: Value,
        /// Steps started, all at once, when this call's first attempt leaves.
        #[serde(default)]
        during: Vec<Step>,
    },
    Resume {
        expect: Value,
    },
    Pending {
        expect: Value,
    },
    Forget {
        intent: String,
        expect: Value,
    },
    Prune {
        expect: Value,
    },
    Reload {
        #[serde(default)]
        client: ClientOptions,
    },
    Advance {
        ms: u64,
    },
}

impl Step {
    /// The step's expected result, then its `during` steps' (the order the
    /// runs record results in).
    fn expected_results(&self, results: &mut Vec<Value>) {
        match self {
            Step::Send { expect, during, .. } => {
                results.push(expect.clone());
                for step in during {
                    step.expected_results(results);
                }
            }
            Step::Resume { expect }
            | Step::Pending { expect }
            | Step::Prune { expect }
            | Step::Forget { expect, .. } => {
                results.push(expect.clone());
            }
            Step::Reload { .. } | Step::Advance { .. } => {}
        }
    }
}
