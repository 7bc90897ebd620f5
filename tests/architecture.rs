//! The shape every new area copies, checked from the source: plumbing imports no area, an
//! area reaches another only through its public face (`service`, `dto`, `validate`), and no
//! two top-level modules import each other, directly or around a circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Shared plumbing: what every area may use, and which uses no area.
const PLUMBING: &[&str] = &[
    "auth",
    "blobs",
    "blocking",
    "coherence",
    "config",
    "connections",
    "db",
    "error",
    "events",
    "extract",
    "images",
    "metrics",
    "openapi",
    "pagination",
    "proptest_support",
    "response_headers",
    "slots",
    "state",
    "telemetry",
    "throttle",
    "time",
    "validation",
];

/// Rules several areas share; they may use plumbing only.
const SHARED_RULES: &[&str] = &["stock_rules"];

/// Where the application is put together: they may use anything, and nothing uses them.
const COMPOSITION: &[&str] = &["lib", "main", "router", "server", "bootstrap", "demo"];

/// The modules of an area that other areas may use.
const PUBLIC_FACE: &[&str] = &["service", "dto", "validate"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`src/inventory/repo.rs` → `inventory`).
fn module_of(path: &Path) -> String {
    let rel = path.strip_prefix(src()).expect("under src");
    let first = rel.components().next().expect("a component");
    let name = first.as_os_str().to_string_lossy();
    name.trim_end_matches(".rs").to_owned()
}

/// Every `crate::a::b` path in the code (comments excluded), as (`a`, `b`).
fn crate_paths(code: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for line in code.lines() {
        let line = line.split("//").next().unwrap_or("");
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            let tail = &rest[at + "crate::".len()..];
            let ident = |s: &str| -> String {
                s.chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect()
            };
            let first = ident(tail);
            let after = &tail[first.len()..];
            let second = after.strip_prefix("::").map(ident).unwrap_or_default();
            // `use crate::x::{a, b}`: each item of the group counts.
            if let Some(group) = after.strip_prefix("::{") {
                let group = group.split('}').next().unwrap_or("");
                for item in group.split(',') {
                    let item = item.trim();
                    let name = ident(item);
                    if !name.is_empty() {
                        found.push((first.clone(), name));
                    }
                }
            } else {
                found.push((first.clone(), second));
            }
            rest = tail;
        }
    }
    found
}

struct Graph {
    /// module → (module it uses → the places and paths where it does).
    edges: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

fn graph() -> Graph {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut edges: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for file in files {
        let from = module_of(&file);
        let code = std::fs::read_to_string(&file).expect("read source");
        for (to, inner) in crate_paths(&code) {
            if to == from || to.is_empty() {
                continue;
            }
            let place = format!(
                "{}: crate::{to}::{inner}",
                file.strip_prefix(src()).unwrap_or(&file).display()
            );
            edges
                .entry(from.clone())
                .or_default()
                .entry(to)
                .or_default()
                .push(place);
        }
    }
    Graph { edges }
}

#[test]
fn plumbing_and_shared_rules_import_no_area() {
    let graph = graph();
    let mut wrong = Vec::new();
    for module in PLUMBING.iter().chain(SHARED_RULES) {
        for (to, places) in graph.edges.get(*module).into_iter().flatten() {
            if !PLUMBING.contains(&to.as_str()) {
                wrong.extend(places.iter().cloned());
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "plumbing reaches into areas:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn areas_reach_each_other_only_through_their_public_face() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut wrong = Vec::new();
    for file in files {
        let from = module_of(&file);
        if PLUMBING.contains(&from.as_str())
            || SHARED_RULES.contains(&from.as_str())
            || COMPOSITION.contains(&from.as_str())
        {
            continue;
        }
        let code = std::fs::read_to_string(&file).expect("read source");
        for (to, inner) in crate_paths(&code) {
            let is_area = !PLUMBING.contains(&to.as_str())
                && !SHARED_RULES.contains(&to.as_str())
                && !COMPOSITION.contains(&to.as_str());
            if to != from && is_area && !PUBLIC_FACE.contains(&inner.as_str()) {
                wrong.push(format!(
                    "{}: crate::{to}::{inner}",
                    file.strip_prefix(src()).unwrap_or(&file).display()
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "areas reaching past another area's service:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_import_circles_between_modules() {
    let graph = graph();
    // Depth-first search for a back edge; reports the circle it closes.
    fn visit(
        node: &str,
        graph: &Graph,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut circle = path[at..].to_vec();
            circle.push(node.to_owned());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.edges.get(node).into_iter().flat_map(|e| e.keys()) {
            if let Some(circle) = visit(next, graph, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.edges.keys() {
        if let Some(circle) = visit(node, &graph, &mut Vec::new(), &mut done) {
            let mut report = vec![circle.join(" → ")];
            for pair in circle.windows(2) {
                if let Some(places) = graph.edges.get(&pair[0]).and_then(|e| e.get(&pair[1])) {
                    report.push(format!("  {}", places[0]));
                }
            }
            panic!("import circle:\n{}", report.join("\n"));
        }
    }
}
