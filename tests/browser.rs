//! Runs the web page's browser suite in `tests/browser` (Node's test runner driving Debian's
//! Chromium through playwright-core) against this build's binary, so `cargo test` covers the
//! page too. `scripts/test` installs what it needs; without it, this test says what is missing.

use std::path::Path;
use std::process::Command;

const SUITE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser");

#[test]
fn the_web_page_works_in_a_real_browser() {
    let chromium = std::env::var("CHROMIUM_PATH").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "the browser tests need Chromium at {chromium}: run scripts/test, which installs \
         Debian's chromium package"
    );
    assert!(
        Path::new(SUITE)
            .join("node_modules/playwright-core")
            .exists(),
        "the browser tests need playwright-core: run scripts/test, or npm ci in tests/browser"
    );
    let status = Command::new("node")
        .args(["--test", "--test-concurrency=1", "--test-reporter=spec"])
        .current_dir(SUITE)
        .env("CHAT_BIN", env!("CARGO_BIN_EXE_chat"))
        .env("CHROMIUM_PATH", &chromium)
        .status()
        .expect("the browser tests need Node.js 20 or later on the PATH");
    assert!(
        status.success(),
        "the browser suite failed: its report is above"
    );
}
