//! Runs the Node suites in `tests/browser` against this build's binary, so `cargo test` covers
//! them too: the web page's (Node's test runner driving Debian's Chromium through
//! playwright-core, and a Spring tutorial page talking with ours), and the client libraries
//! Spring STOMP front ends use (`clients/`: @stomp/stompjs, legacy stompjs, sockjs-client, in
//! Node). `scripts/test` installs what they need; without it, these tests say what is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

const SUITE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser");

/// The test files directly in `dir`, in a stable order.
fn test_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("the Node suite's directory")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.to_string_lossy().ends_with(".test.mjs"))
        .collect();
    files.sort();
    files
}

/// Runs Node's test runner over these files, one file at a time; fails with its report.
fn run_node_tests(files: &[PathBuf], chromium: Option<&str>) {
    assert!(
        Path::new(SUITE).join("node_modules/ws").exists(),
        "the Node tests need their npm packages: run scripts/test, or npm ci in tests/browser"
    );
    let mut command = Command::new("node");
    command
        .args(["--test", "--test-concurrency=1", "--test-reporter=spec"])
        .args(files)
        .current_dir(SUITE)
        .env("CHAT_BIN", env!("CARGO_BIN_EXE_chat"));
    if let Some(chromium) = chromium {
        command.env("CHROMIUM_PATH", chromium);
    }
    let status = command
        .status()
        .expect("the Node tests need Node.js 20 or later on the PATH");
    assert!(
        status.success(),
        "the Node suite failed: its report is above"
    );
}

#[test]
fn the_web_page_works_in_a_real_browser() {
    let chromium = std::env::var("CHROMIUM_PATH").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "the browser tests need Chromium at {chromium}: run scripts/test, which installs \
         Debian's chromium package"
    );
    run_node_tests(&test_files(Path::new(SUITE)), Some(&chromium));
}

#[test]
fn spring_stomp_and_sockjs_client_libraries_work_unchanged() {
    run_node_tests(&test_files(&Path::new(SUITE).join("clients")), None);
}
