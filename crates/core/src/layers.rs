//! The layer rules of this crate, checked on its own source: every `crate::…` path of every
//! module (grouped `use` trees included) is resolved to the module it names, and
//! - a module imports only its own layer or a lower one (base < controls < pipeline < audit < local);
//! - the modules' imports form no circle;
//! - a control imports no other control: only `controls` (the `Control` type), `controls::kit` and
//!   `controls::names`, besides its own modules; only `controls::baseline` names them all.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layer of a module, by its first segment.
fn layer(module: &str) -> Option<u8> {
    match module.split("::").next().unwrap_or_default() {
        "aws" => Some(0),
        "controls" => Some(1),
        "pipeline" => Some(2),
        "audit" => Some(3),
        // Local-only code sits above everything, so no production module may import it.
        "local" => Some(4),
        _ => None,
    }
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `controls/kit.rs` → `controls::kit`; `controls/mod.rs` → `controls`; `lib.rs` → ``.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src/").with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts.join("::")
}

/// The code of a file without its comments (doc links are not imports) and string literals.
fn code(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let mut in_str = false;
        let mut prev = ' ';
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            if !in_str && c == '/' && chars.peek() == Some(&'/') {
                break;
            }
            if c == '"' && prev != '\\' {
                in_str = !in_str;
            } else if !in_str {
                out.push(c);
            }
            prev = c;
        }
        out.push('\n');
    }
    out
}

/// Every path `crate::a::b…` in `code`, with grouped trees `crate::a::{b, c::{d, e}}` expanded.
fn paths(code: &str) -> Vec<Vec<String>> {
    fn tree(s: &[char], i: &mut usize, prefix: &[String], out: &mut Vec<Vec<String>>) {
        let mut path = prefix.to_vec();
        loop {
            while *i < s.len() && s[*i].is_whitespace() {
                *i += 1;
            }
            if *i < s.len() && s[*i] == '{' {
                *i += 1;
                loop {
                    tree(s, i, &path, out);
                    while *i < s.len() && s[*i].is_whitespace() {
                        *i += 1;
                    }
                    match s.get(*i) {
                        Some(',') => *i += 1,
                        Some('}') => {
                            *i += 1;
                            return;
                        }
                        _ => return,
                    }
                    while *i < s.len() && s[*i].is_whitespace() {
                        *i += 1;
                    }
                    if s.get(*i) == Some(&'}') {
                        *i += 1;
                        return;
                    }
                }
            }
            let start = *i;
            while *i < s.len() && (s[*i].is_alphanumeric() || s[*i] == '_') {
                *i += 1;
            }
            if *i == start {
                break;
            }
            path.push(s[start..*i].iter().collect());
            if s.get(*i) == Some(&':') && s.get(*i + 1) == Some(&':') {
                *i += 2;
            } else {
                break;
            }
        }
        // `path as alias`: the alias names nothing new.
        let mut j = *i;
        while j < s.len() && s[j].is_whitespace() {
            j += 1;
        }
        if s.get(j) == Some(&'a') && s.get(j + 1) == Some(&'s') && s.get(j + 2).is_some_and(|c| c.is_whitespace()) {
            j += 2;
            while j < s.len() && s[j].is_whitespace() {
                j += 1;
            }
            while j < s.len() && (s[j].is_alphanumeric() || s[j] == '_') {
                j += 1;
            }
            *i = j;
        }
        out.push(path);
    }
    let s: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let needle: Vec<char> = "crate::".chars().collect();
    let mut i = 0;
    while i + needle.len() <= s.len() {
        let boundary = i == 0 || !(s[i - 1].is_alphanumeric() || s[i - 1] == '_' || s[i - 1] == ':');
        if boundary && s[i..i + needle.len()] == needle[..] {
            i += needle.len();
            tree(&s, &mut i, &[], &mut out);
        } else {
            i += 1;
        }
    }
    out
}

/// The longest known module a path names.
fn resolve(path: &[String], modules: &BTreeSet<String>) -> Option<String> {
    (1..=path.len()).rev().map(|n| path[..n].join("::")).find(|m| modules.contains(m))
}

/// module → the modules it imports.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let modules: BTreeSet<String> = all.iter().map(|f| module_of(&src, f)).collect();
    let mut graph = BTreeMap::new();
    for file in &all {
        let module = module_of(&src, file);
        if module.is_empty() || module == "layers" {
            continue;
        }
        let text = std::fs::read_to_string(file).expect("a source file is readable");
        let used: BTreeSet<String> = paths(&code(&text))
            .iter()
            .filter_map(|p| resolve(p, &modules))
            .filter(|m| *m != module && !m.is_empty())
            .collect();
        graph.insert(module, used);
    }
    graph
}

/// The control `module` is part of (`controls::alarms::filters` → `alarms`); None for a module of
/// no control (what every control shares: `kit`, `names`, and `baseline`, which lists them).
fn control_of(module: &str) -> Option<&str> {
    let name = module.strip_prefix("controls::")?.split("::").next()?;
    (!matches!(name, "kit" | "names" | "baseline")).then_some(name)
}

/// The rules broken, one line each.
fn violations(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut out = Vec::new();
    for (from, tos) in graph {
        for to in tos {
            match (layer(from), layer(to)) {
                (Some(a), Some(b)) if b > a => out.push(format!("{from} imports {to}, a higher layer")),
                (None, _) | (_, None) => out.push(format!("{from} → {to}: a module outside the layers")),
                _ => {}
            }
            let other = control_of(to).is_some_and(|c| control_of(from) != Some(c));
            if other && from != "controls::baseline" && from.starts_with("controls") {
                out.push(format!("{from} imports the control {to}: controls share only kit and names"));
            }
        }
    }
    // Circles: a depth-first search that meets a module still on its stack.
    fn visit(
        m: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        out: &mut Vec<String>,
    ) {
        if done.contains(m) {
            return;
        }
        if let Some(at) = stack.iter().position(|s| s == m) {
            out.push(format!("import circle: {} → {m}", stack[at..].join(" → ")));
            return;
        }
        stack.push(m.to_owned());
        for next in graph.get(m).into_iter().flatten() {
            visit(next, graph, stack, done, out);
        }
        stack.pop();
        done.insert(m.to_owned());
    }
    let mut done = BTreeSet::new();
    for m in graph.keys() {
        visit(m, graph, &mut Vec::new(), &mut done, &mut out);
    }
    out
}

#[test]
fn grouped_use_trees_and_comments_are_read_as_the_compiler_reads_them() {
    let text = "use crate::a::{b as _, c::{d, E}, h as H};\n// crate::x::y in a comment\nlet s = \"crate::z\"; crate::f::g(1);";
    let found = paths(&code(text));
    let joined: Vec<String> = found.iter().map(|p| p.join("::")).collect();
    assert_eq!(joined, ["a::b", "a::c::d", "a::c::E", "a::h", "f::g"]);
}

#[test]
fn the_checker_sees_a_circle_an_upward_import_and_a_control_importing_another() {
    let g: BTreeMap<String, BTreeSet<String>> = [
        ("pipeline::a", vec!["pipeline::b"]),
        ("pipeline::b", vec!["pipeline::a", "audit"]),
        ("controls::x", vec!["controls::y"]),
        ("controls::y", vec![]),
        // A control's own parts and what every control shares are not another control.
        ("controls::x::part", vec!["controls::x::other", "controls::kit::permissions", "controls::z::catalogue"]),
        ("controls::x::other", vec![]),
        ("controls::kit::permissions", vec![]),
        ("controls::z::catalogue", vec![]),
        ("audit", vec![]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
    .collect();
    let v = violations(&g).join("\n");
    assert!(v.contains("import circle: pipeline::a → pipeline::b → pipeline::a"), "{v}");
    assert!(v.contains("pipeline::b imports audit, a higher layer"), "{v}");
    assert!(v.contains("controls::x imports the control controls::y"), "{v}");
    assert!(v.contains("controls::x::part imports the control controls::z::catalogue"), "{v}");
    assert!(!v.contains("controls::x::other") && !v.contains("controls::kit::permissions"), "{v}");
}

#[test]
fn the_crate_imports_only_downward_and_without_circles() {
    let g = graph();
    assert!(g.contains_key("controls::config") && g["pipeline::rollback"].contains("controls"), "{g:#?}");
    let v = violations(&g);
    assert!(v.is_empty(), "layer rules broken:\n{}", v.join("\n"));
}
