/work/main/target-old/wasm32-unknown-unknown/wasm/deps/cfg_if-11a9fc0a88b4b911.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cfg-if-1.0.5/src/lib.rs

/work/main/target-old/wasm32-unknown-unknown/wasm/deps/libcfg_if-11a9fc0a88b4b911.rlib: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cfg-if-1.0.5/src/lib.rs

/work/main/target-old/wasm32-unknown-unknown/wasm/deps/libcfg_if-11a9fc0a88b4b911.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cfg-if-1.0.5/src/lib.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cfg-if-1.0.5/src/lib.rs:
