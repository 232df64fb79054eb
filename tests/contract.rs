//! Runs the Node suite in `tests/contract` against this build's binary, so `cargo test` covers
//! it too: the AsyncAPI document checked by the AsyncAPI parser from npm, and against real
//! frames captured from the running server. `scripts/test` installs its npm packages; without
//! them, this test says what is missing.

use std::path::Path;
use std::process::Command;

const SUITE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/contract");

#[test]
fn the_asyncapi_document_matches_what_the_server_sends() {
    assert!(
        Path::new(SUITE)
            .join("node_modules/@asyncapi/parser")
            .exists(),
        "the contract test needs its npm packages: run scripts/test, or npm ci in tests/contract"
    );
    let status = Command::new("node")
        .args(["--test", "--test-reporter=spec", "asyncapi.test.mjs"])
        .current_dir(SUITE)
        .env("CHAT_BIN", env!("CARGO_BIN_EXE_chat"))
        .status()
        .expect("the contract test needs Node.js 20 or later on the PATH");
    assert!(
        status.success(),
        "the contract suite failed: its report is above"
    );
}
