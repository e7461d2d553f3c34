/work/main/target-old/wasm32-unknown-unknown/wasm/deps/ulid-6c7b67f3d24888e4.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ulid-1.2.1/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ulid-1.2.1/src/base32.rs

/work/main/target-old/wasm32-unknown-unknown/wasm/deps/libulid-6c7b67f3d24888e4.rlib: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ulid-1.2.1/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ulid-1.2.1/src/base32.rs

/work/main/target-old/wasm32-unknown-unknown/wasm/deps/libulid-6c7b67f3d24888e4.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ulid-1.2.1/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ulid-1.2.1/src/base32.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ulid-1.2.1/src/lib.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ulid-1.2.1/src/base32.rs:
