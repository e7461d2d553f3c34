/work/main/target-old/wasm32-unknown-unknown/wasm/deps/crypto_common-ffbfbeba681bf71e.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/crypto-common-0.1.7/src/lib.rs

/work/main/target-old/wasm32-unknown-unknown/wasm/deps/libcrypto_common-ffbfbeba681bf71e.rlib: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/crypto-common-0.1.7/src/lib.rs

/work/main/target-old/wasm32-unknown-unknown/wasm/deps/libcrypto_common-ffbfbeba681bf71e.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/crypto-common-0.1.7/src/lib.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/crypto-common-0.1.7/src/lib.rs:
