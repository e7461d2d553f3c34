/work/main/target-old/wasm32-unknown-unknown/wasm/deps/oncely_js.d: js/src/lib.rs js/src/heap.rs

/work/main/target-old/wasm32-unknown-unknown/wasm/deps/oncely_js.wasm: js/src/lib.rs js/src/heap.rs

js/src/lib.rs:
js/src/heap.rs:
