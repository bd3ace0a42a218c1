//! Every error name has its page, and the README opens with the two commands.

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
