/work/main/target-old/wasm32-unknown-unknown/wasm/deps/oncely-6d8fd63056d1f9fe.d: src/lib.rs src/error.rs src/event/mod.rs src/intent.rs src/key.rs src/pilot.rs src/retry/mod.rs src/retry/backoff.rs src/retry/budget.rs src/retry/classify.rs src/retry/retry_after.rs src/runtime/mod.rs src/store/mod.rs src/store/encoding.rs src/text.rs src/transport/mod.rs

/work/main/target-old/wasm32-unknown-unknown/wasm/deps/liboncely-6d8fd63056d1f9fe.rlib: src/lib.rs src/error.rs src/event/mod.rs src/intent.rs src/key.rs src/pilot.rs src/retry/mod.rs src/retry/backoff.rs src/retry/budget.rs src/retry/classify.rs src/retry/retry_after.rs src/runtime/mod.rs src/store/mod.rs src/store/encoding.rs src/text.rs src/transport/mod.rs

/work/main/target-old/wasm32-unknown-unknown/wasm/deps/liboncely-6d8fd63056d1f9fe.rmeta: src/lib.rs src/error.rs src/event/mod.rs src/intent.rs src/key.rs src/pilot.rs src/retry/mod.rs src/retry/backoff.rs src/retry/budget.rs src/retry/classify.rs src/retry/retry_after.rs src/runtime/mod.rs src/store/mod.rs src/store/encoding.rs src/text.rs src/transport/mod.rs

src/lib.rs:
src/error.rs:
src/event/mod.rs:
src/intent.rs:
src/key.rs:
src/pilot.rs:
src/retry/mod.rs:
src/retry/backoff.rs:
src/retry/budget.rs:
src/retry/classify.rs:
src/retry/retry_after.rs:
src/runtime/mod.rs:
src/store/mod.rs:
src/store/encoding.rs:
src/text.rs:
src/transport/mod.rs:
