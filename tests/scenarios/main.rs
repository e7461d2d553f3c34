//! The scenario suite (tests/scenarios.json) with the Rust `Client`:
//! natively on `MemoryStore` and `FileStore`, and in headless Chromium
//! (`cargo test --target wasm32-unknown-unknown`) on `MemoryStore` and
//! `IndexedDbStore`. Every row's transcript must equal the row, on every
//! executor that can run it; pkg-tests/scenarios.test.mjs holds the npm
//! package to the same rows.

mod network;
mod play;
mod rows;
mod transcript;

use oncely::MemoryStore;

use play::Stores;
use rows::Suite;

#[cfg(not(target_arch = "wasm32"))]
use tokio::test as async_test;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as async_test;

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

/// Plays every row `executor` can run, each on fresh `stores()`, and fails
/// listing every part of a row's transcript that differs from the row (and
/// every part marked as a known drift there that no longer differs).
async fn every_row<S: Stores>(executor: &str, stores: impl Fn() -> S) {
    let suite: Suite = serde_json::from_str(include_str!("../scenarios.json"))
        .expect("tests/scenarios.json reads");
    let origin = origin();
    let mut failures = Vec::new();
    for row in suite.scenarios.iter().filter(|row| row.runs_on(executor)) {
        let observed = play::play(&suite, row, &stores(), &origin).await;
        let expected = row.expected();
        let drift = row.known_drift.get(executor);
        let mut verdict = "ok";
        for part in ["results", "events", "wire"] {
            let same = expected[part] == observed[part];
            match (same, drift.and_then(|parts| parts.get(part))) {
                (true, None) => {}
                (false, Some(why)) => {
                    verdict = "drift";
                    say(&format!(
                        "known drift in the {part} of \"{}\": {why}",
                        row.name
                    ));
                }
                (true, Some(_)) => failures.push(format!(
                    "{}: its {part} match on {executor} now: remove the known_drift",
                    row.name
                )),
                (false, None) => failures.push(format!(
                    "{}: {part}\n  expected: {}\n  observed: {}",
                    row.name, expected[part], observed[part]
                )),
            }
        }
        say(&format!("{verdict:<6}{}", row.name));
    }
    assert!(
        failures.is_empty(),
        "{} difference(s) on {executor}:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// A store shared by the row's clients: each reload gets the same one.
struct Memory(MemoryStore);

impl Stores for Memory {
    type Store = MemoryStore;
    async fn open(&self) -> MemoryStore {
        self.0.clone()
    }
}

#[async_test]
async fn every_row_on_the_memory_store() {
    let executor = if cfg!(target_arch = "wasm32") {
        "wasm-memory"
    } else {
        "native-memory"
    };
    every_row(executor, || Memory(MemoryStore::new())).await;
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use super::*;

    /// The origin of `{origin}`: no request leaves the scripted network.
    pub fn origin() -> String {
        "https://api.example".to_owned()
    }

    pub fn say(line: &str) {
        println!("{line}");
    }

    /// A SQLite file in a directory of its own; each reload opens it again.
    struct File(tempfile::TempDir);

    impl Stores for File {
        type Store = oncely::FileStore;
        async fn open(&self) -> oncely::FileStore {
            oncely::FileStore::open(self.0.path().join("intents.db")).expect("the file store opens")
        }
    }

    #[tokio::test]
    async fn every_row_on_the_file_store() {
        every_row("native-file", || File(tempfile::tempdir().unwrap())).await;
    }
}
#[cfg(not(target_arch = "wasm32"))]
use native::{origin, say};

#[cfg(target_arch = "wasm32")]
mod browser {
    use super::*;
    use oncely::runtime::{global_property, property};

    /// The test page's origin: relative URLs resolve against it.
    pub fn origin() -> String {
        global_property("location")
            .and_then(|location| property(&location, "origin"))
            .and_then(|origin| origin.as_string())
            .expect("a page has an origin")
    }

    pub fn say(line: &str) {
        wasm_bindgen_test::console_log!("{line}");
    }

    /// A database of its own (`oncely:<namespace>`); each reload opens it
    /// again, as a reloaded page would.
    struct IndexedDb(String);

    impl Stores for IndexedDb {
        type Store = oncely::IndexedDbStore;
        async fn open(&self) -> oncely::IndexedDbStore {
            oncely::IndexedDbStore::open(&self.0, oncely::Durability::Strict)
                .await
                .expect("the database opens")
        }
    }

    #[async_test]
    async fn every_row_on_indexeddb() {
        let run = js_sys::Date::now();
        let rows = std::cell::Cell::new(0);
        every_row("wasm-indexeddb", || {
            rows.set(rows.get() + 1);
            IndexedDb(format!("scenarios-{run}-{}", rows.get()))
        })
        .await;
    }
}
#[cfg(target_arch = "wasm32")]
use browser::{origin, say};
