//! oncely makes a client's side effects happen once.
//!
//! An application names an *intent* ("charge order 42"). oncely mints one
//! idempotency key for it, writes the intent to durable storage before the
//! first byte leaves, sends it with an `Idempotency-Key` header, retries under
//! the *same* key, joins concurrent duplicate calls onto the one flight, and
//! records the outcome, so a reload, a double click or a restarted process gets
//! the same answer instead of a second charge.
//!
//! # Examples
//!
//! ```no_run
//! # async fn run() -> Result<(), oncely::Error> {
//! let client = oncely::Client::builder()
//!     .store(oncely::FileStore::open("payments.oncely")?)
//!     .build()?;
//! let outcome = client
//!     .intent("order-42")
//!     .post("https://api.example.com/charges")
//!     .header("content-type", "application/json")
//!     .body(r#"{"amount":4200,"currency":"eur"}"#)
//!     .send()
//!     .await?;
//! println!("{} under key {} after {} attempt(s)", outcome.status(), outcome.key(), outcome.attempts());
//! // At start-up: finish whatever an earlier run left pending, under the same keys.
//! client.resume().await?;
//! # Ok(()) }
//! ```
//!
//! # Targets
//!
//! One core, two targets, decided once (the `if_native!`/`if_wasm!` gate):
//! natively the transport is reqwest, the durable store is SQLite
//! ([`FileStore`]) and the runtime is tokio; on `wasm32` the browser's own
//! `fetch`, IndexedDB and timers take their places under the same names
//! (the `browser` feature, on by default).
//!
//! Every decision of a flight is made by the synchronous [`pilot`], which
//! does no I/O: the [`Client`] performs what it decides, and so does the npm
//! package's JavaScript, which ships the crate without its `browser` feature
//! (the pilot, records, keys, retry decisions) as a small WebAssembly module.
#![deny(missing_docs)]
// The synchronous core alone (wasm32 without `browser`) needs no operating
// system: the npm package's WebAssembly builds it without `std`, so no
// panic machinery or `std` runtime ships (the package supplies its own
// panic handler and allocator).
#![cfg_attr(all(target_arch = "wasm32", not(feature = "browser")), no_std)]
// In the browser nothing is `Send`: the same `Arc`s serve both targets.
#![cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
// The synchronous core alone (wasm32 without `browser`) leaves the client's
// helpers unused.
#![cfg_attr(
    all(target_arch = "wasm32", not(feature = "browser")),
    allow(dead_code, unused_imports)
)]

extern crate alloc;

/// What the standard prelude holds, from `alloc`: the same names with or
/// without `std` (every module of the synchronous core imports it).
mod prelude {
    pub(crate) use alloc::borrow::ToOwned;
    pub(crate) use alloc::boxed::Box;
    pub(crate) use alloc::format;
    pub(crate) use alloc::string::String;
    pub(crate) use alloc::vec::Vec;
}

/// Items for native targets (tokio, reqwest, SQLite).
macro_rules! if_native {
    ($($item:item)*) => {$(
        #[cfg(not(target_arch = "wasm32"))]
        $item
    )*}
}

/// Items for the browser target (wasm32).
macro_rules! if_wasm {
    ($($item:item)*) => {$(
        #[cfg(target_arch = "wasm32")]
        $item
    )*}
}

/// Items of the Rust client's browser I/O (wasm32 with the `browser`
/// feature: fetch, IndexedDB, Web Locks, browser timers).
macro_rules! if_browser {
    ($($item:item)*) => {$(
        #[cfg(all(target_arch = "wasm32", feature = "browser"))]
        $item
    )*}
}

/// Items of the Rust client: natively, and on wasm32 with the `browser`
/// feature. Without it, the crate is the synchronous core the npm
/// package's JavaScript drives.
macro_rules! if_client {
    ($($item:item)*) => {$(
        #[cfg(any(not(target_arch = "wasm32"), feature = "browser"))]
        $item
    )*}
}

if_client! {
    mod client;
    mod flight;
    pub use client::{Client, ClientBuilder, Credentials, CredentialsFn, IntentRequest};
}
mod error;
mod event;
pub mod intent;
pub mod key;
pub mod pilot;
pub mod retry;
pub mod runtime;
pub mod store;
pub mod text;
pub mod transport;

pub use error::{Error, ErrorKind};
pub use event::{Event, EventHandler, EventKind};
pub use intent::{Failure, Fingerprint, Outcome, Record, Request, Response, State};
pub use key::Key;
pub use retry::RetryPolicy;
pub use store::{Durability, Store};
if_client! {
    pub use event::Subscription;
    pub use store::MemoryStore;
}
if_native! {
    pub use store::{FileStore, FileStoreOptions};
    #[cfg(feature = "postgres")]
    pub use store::{PostgresStore, PostgresStoreOptions};
}
if_browser! {
    pub use store::IndexedDbStore;
}

// The unit tests run in headless Chromium too (`make test`), not in Node.
#[cfg(all(test, target_arch = "wasm32"))]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

/// The README's examples compile.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
