//! The layers `src/lib.rs` states are the ones the code has: every `crate::` path in a module
//! of `src/` names a module on a lower floor of that list, and inside `ws` the session stands
//! on the dialects, which stand on the transport, and never the other way.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("a source directory") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            files.extend(sources(&path));
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
    files
}

/// A file's code without its unit tests (which may reach anywhere).
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("a source file");
    match text.find("#[cfg(test)]\nmod tests") {
        Some(tests) => text[..tests].to_owned(),
        None => text,
    }
}

/// The floors `src/lib.rs` lists under "# Layers": module -> floor.
fn floors() -> HashMap<String, usize> {
    let lib = std::fs::read_to_string(format!("{SRC}/lib.rs")).expect("src/lib.rs");
    let mut floors = HashMap::new();
    for line in lib.lines() {
        let Some((number, rest)) = line
            .strip_prefix("//! ")
            .and_then(|line| line.split_once(". "))
        else {
            continue;
        };
        let Ok(floor) = number.parse::<usize>() else {
            continue;
        };
        let names = rest.split(':').next().unwrap_or_default();
        for name in names.split(',').map(|name| name.trim().trim_matches('`')) {
            floors.insert(name.to_owned(), floor);
        }
    }
    floors
}

/// The top-level module a file of `src/` belongs to.
fn module_of(path: &Path) -> String {
    let relative = path.strip_prefix(SRC).expect("under src");
    let first = relative.components().next().expect("a component");
    first
        .as_os_str()
        .to_string_lossy()
        .trim_end_matches(".rs")
        .to_owned()
}

/// The modules a file's code names as `crate::name`.
fn named(code: &str, prefix: &str) -> Vec<String> {
    code.match_indices(prefix)
        .map(|(at, _)| {
            code[at + prefix.len()..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect::<String>()
        })
        .filter(|name| !name.is_empty())
        .collect()
}

#[test]
fn every_module_uses_only_modules_below_it() {
    let floors = floors();
    assert!(floors.len() > 10, "src/lib.rs lists the floors: {floors:?}");
    let mut wrong = Vec::new();
    for path in sources(Path::new(SRC)) {
        let module = module_of(&path);
        if module == "lib" || module == "main" {
            continue;
        }
        let Some(&floor) = floors.get(&module) else {
            wrong.push(format!("{module} is on no floor of src/lib.rs"));
            continue;
        };
        for used in named(&code(&path), "crate::") {
            let below = floors.get(&used).is_some_and(|&other| other < floor);
            if used != module && !below {
                wrong.push(format!("{} uses {used}", path.display()));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn inside_ws_the_session_stands_on_the_dialects_which_stand_on_the_transport() {
    let layers = ["transport", "dialect", "session"];
    let mut wrong = Vec::new();
    for (floor, layer) in layers.iter().enumerate() {
        for path in sources(&Path::new(SRC).join("ws").join(layer)) {
            let code = code(&path);
            for prefix in ["crate::ws::", "super::", "ws::"] {
                for used in named(&code, prefix) {
                    let above = layers[floor + 1..].contains(&used.as_str()) || used == "upgrade";
                    if above {
                        wrong.push(format!("{} uses {used}", path.display()));
                    }
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
