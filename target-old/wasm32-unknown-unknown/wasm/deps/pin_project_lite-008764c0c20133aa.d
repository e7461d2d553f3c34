/work/main/target-old/wasm32-unknown-unknown/wasm/deps/pin_project_lite-008764c0c20133aa.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/pin-project-lite-0.2.18/src/lib.rs

/work/main/target-old/wasm32-unknown-unknown/wasm/deps/libpin_project_lite-008764c0c20133aa.rlib: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/pin-project-lite-0.2.18/src/lib.rs

/work/main/target-old/wasm32-unknown-unknown/wasm/deps/libpin_project_lite-008764c0c20133aa.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/pin-project-lite-0.2.18/src/lib.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/pin-project-lite-0.2.18/src/lib.rs:
