//! Every error name has its page, the README opens with the two commands, and no source file is
//! too long to read.

use assure_contract::ErrorName;

#[test]
fn every_error_name_has_a_page() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    for name in ErrorName::ALL {
        let page = root.join(name.doc_path());
        let text = std::fs::read_to_string(&page).unwrap_or_else(|_| panic!("missing {}", page.display()));
        assert!(text.starts_with(&format!("# {}", name.as_str())), "{} starts with its name", page.display());
        for section in ["## Cause", "## What to do"] {
            assert!(text.contains(section), "{} has {section}", page.display());
        }
    }
}

#[test]
fn the_readme_opens_with_the_two_commands() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let head: String = readme.lines().take(20).collect::<Vec<_>>().join("\n");
    assert!(head.contains("cargo xtask demo") && head.contains("cargo xtask test"), "{head}");
}

/// A file a newcomer can read whole: no Rust source of the workspace is over 600 lines (the local
/// cloud's Python is held to the same by its own `test_imports`).
#[test]
fn no_rust_source_is_over_600_lines() {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() && path.file_name().is_some_and(|n| n != "target" && !n.to_string_lossy().starts_with('.'))
            {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut files = Vec::new();
    for dir in ["crates", "steps", "tests", "xtask"] {
        walk(&root.join(dir), &mut files);
    }
    assert!(files.len() > 100, "found only {} files", files.len());
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).unwrap().lines().count();
            (n > 600).then(|| format!("{} ({n})", f.strip_prefix(root).unwrap().display()))
        })
        .collect();
    assert!(long.is_empty(), "over 600 lines: {long:?}");
}
