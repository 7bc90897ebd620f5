//! `docs/API.md` is the guide frontend teams and integrators read. These tests keep it honest:
//! every route it names exists in the OpenAPI document (with that method where it gives one,
//! with those query parameters where it shows a query), every operation of the document is in
//! the guide, and its links stay inside the repository.
//!
//! A route is named by any path starting with `/` in prose, code spans, tables and code
//! blocks (`/api/v1/items`, `GET /api/v1/items/{id}`, `http://localhost:8080/healthz`,
//! `$API/api/v1/items/42`); in a table row the method is the cell before the path, in a
//! `curl` command it is what curl would send. Path parameters are compared by position:
//! `{id}`, `{item_id}`, `$ITEM` and `42` all stand for one parameter segment.

use std::collections::BTreeSet;
use std::path::Path;

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
use regex::Regex;
use serde_json::Value;

use crate::common::TestApp;

const GUIDE: &str = "docs/API.md";

/// Served by the application but not part of the OpenAPI document (Swagger UI itself).
const SERVED_OUTSIDE_THE_DOCUMENT: &[&str] = &["/docs/"];

const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

fn read_repo_file(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{relative} must exist in the repository: {e}"))
}

/// A route as the guide names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Mention {
    line: usize,
    method: Option<String>,
    path: String,
    query: Vec<String>,
}

impl std::fmt::Display for Mention {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: ", self.line)?;
        if let Some(m) = &self.method {
            write!(f, "{m} ")?;
        }
        write!(f, "{}", self.path)?;
        if !self.query.is_empty() {
            write!(f, "?{}", self.query.join("&"))?;
        }
        Ok(())
    }
}

/// One path segment: a fixed word, or a parameter (`{id}` in the document).
#[derive(Debug, PartialEq, Eq)]
enum Segment {
    Fixed(String),
    Parameter,
}

fn segments(path: &str) -> Vec<Segment> {
    let trimmed = path.trim_end_matches('/');
    trimmed
        .split('/')
        .skip(1)
        .map(|s| {
            let is_parameter = (s.starts_with('{') && s.ends_with('}'))
                || s.starts_with('$')
                || (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()));
            if is_parameter {
                Segment::Parameter
            } else {
                Segment::Fixed(s.to_owned())
            }
        })
        .collect()
}

/// Finds path mentions in a run of text: an optional method, an optional origin
/// (`http://localhost:8080`, `$API`), then the path and its query.
fn scan(text: &str, first_line: usize, default_methods: &[String], out: &mut Vec<Mention>) {
    let pattern = Regex::new(
        r#"(?x)
        (?:^|[\s"'(\[=,])
        (?:(?P<method>GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS)\s+)?
        (?:https?://(?:localhost|127\.0\.0\.1)(?::\d+)?|\$\{?[A-Za-z_][A-Za-z0-9_]*\}?)?
        (?P<path>/[A-Za-z0-9_{$][A-Za-z0-9_.~%{}$/-]*|/)
        (?:\?(?P<query>[A-Za-z0-9_.~%{}$=&+*:,-]*))?
        "#,
    )
    .expect("static regex");
    for found in pattern.captures_iter(text) {
        let whole = found.get(0).expect("match");
        let raw_path = &found["path"];
        // A lone `/` ("read / write") is not a route.
        if raw_path == "/" {
            continue;
        }
        let path = raw_path.trim_end_matches(['.', ':']).to_owned();
        let line = first_line + text[..whole.start()].matches('\n').count();
        let line = line + usize::from(text[whole.start()..].starts_with('\n'));
        let query: Vec<String> = found
            .name("query")
            .map(|q| {
                q.as_str()
                    .split('&')
                    .filter_map(|pair| pair.split('=').next())
                    .filter(|name| !name.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let methods: Vec<Option<String>> = match found.name("method") {
            Some(m) => vec![Some(m.as_str().to_owned())],
            None if default_methods.is_empty() => vec![None],
            None => default_methods.iter().cloned().map(Some).collect(),
        };
        for method in methods {
            out.push(Mention {
                line,
                method,
                path: path.clone(),
                query: query.clone(),
            });
        }
    }
}

/// Splits a shell command line into words as `sh` would for the guide's examples: single
/// quotes keep everything, double quotes and backslashes escape, a `#` word starts a comment.
/// `None` while a quote is still open (the command goes on on the next line).
fn shell_words(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => w.push(c),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => w.push(chars.next()?),
                        c => w.push(c),
                    }
                }
            }
            '\\' => word
                .get_or_insert_with(String::new)
                .push(chars.next().unwrap_or(' ')),
            '#' if word.is_none() => break,
            c if c.is_whitespace() => words.extend(word.take()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Some(words)
}

/// The method a `curl` command sends, and the paths it requests.
fn scan_curl(block: &str, first_line: usize, out: &mut Vec<Mention>, problems: &mut Vec<String>) {
    // Options whose value is the next word.
    const TAKES_VALUE: &[&str] = &[
        "-X",
        "--request",
        "-H",
        "--header",
        "-d",
        "--data",
        "--data-raw",
        "--data-binary",
        "--data-urlencode",
        "--json",
        "-F",
        "--form",
        "-T",
        "--upload-file",
        "-o",
        "--output",
        "-u",
        "--user",
        "-w",
        "--write-out",
        "-b",
        "--cookie",
        "-c",
        "--cookie-jar",
        "-A",
        "--user-agent",
        "-e",
        "--referer",
        "--max-time",
        "--connect-timeout",
    ];
    const SENDS_BODY: &[&str] = &[
        "-d",
        "--data",
        "--data-raw",
        "--data-binary",
        "--data-urlencode",
        "--json",
        "-F",
        "--form",
    ];
    let mut logical = String::new();
    let mut start_line = first_line;
    for (offset, line) in block.lines().enumerate() {
        if logical.is_empty() {
            start_line = first_line + offset;
        }
        // A command goes on after a trailing `\`, and inside an open quote (a JSON body
        // spread over several lines).
        match line.strip_suffix('\\') {
            Some(continued) => {
                logical.push_str(continued);
                logical.push(' ');
                continue;
            }
            None => logical.push_str(line),
        }
        let Some(at) = logical.find("curl ") else {
            logical.clear();
            continue;
        };
        let Some(words) = shell_words(&logical[at..]) else {
            logical.push('\n');
            continue;
        };
        logical.clear();
        let mut explicit = None;
        let mut sends_body = false;
        let mut head = false;
        let mut upload = false;
        let mut urls = Vec::new();
        let mut words = words.iter().skip(1).peekable();
        while let Some(word) = words.next() {
            if let Some(method) = word.strip_prefix("-X").filter(|m| !m.is_empty()) {
                explicit = Some(method.to_owned());
            } else if TAKES_VALUE.contains(&word.as_str()) {
                let value = words.next().cloned().unwrap_or_default();
                match word.as_str() {
                    "-X" | "--request" => explicit = Some(value),
                    "-T" | "--upload-file" => upload = true,
                    w if SENDS_BODY.contains(&w) => sends_body = true,
                    _ => {}
                }
            } else if word == "-I" || word == "--head" {
                head = true;
            } else if word == "|" || word == "&&" || word == ";" {
                break;
            } else if !word.starts_with('-') {
                urls.push(word.clone());
            }
        }
        let method = explicit.unwrap_or_else(|| {
            if head {
                "HEAD"
            } else if upload {
                "PUT"
            } else if sends_body {
                "POST"
            } else {
                "GET"
            }
            .to_owned()
        });
        for url in urls {
            scan(&url, start_line, std::slice::from_ref(&method), out);
        }
    }
    if !logical.is_empty() {
        problems.push(format!(
            "line {start_line}: this curl command's quoting cannot be parsed"
        ));
    }
}

/// Every route the guide names, and anything in it that could not be read.
fn mentions(markdown: &str) -> (Vec<Mention>, Vec<String>) {
    let line_of = |offset: usize| markdown[..offset].matches('\n').count() + 1;
    let mut out = Vec::new();
    let mut problems = Vec::new();
    // Inline text of the current block, and the line it starts on.
    let mut inline: Option<(String, usize)> = None;
    let mut code_block: Option<(String, usize)> = None;
    let mut row: Option<Vec<(String, usize)>> = None;
    let flush = |inline: &mut Option<(String, usize)>,
                 row: &mut Option<Vec<(String, usize)>>,
                 out: &mut Vec<Mention>| {
        if let Some(cell) = inline.take() {
            match row {
                Some(cells) => cells.push(cell),
                None => scan(&cell.0, cell.1, &[], out),
            }
        }
    };
    for (event, range) in Parser::new_ext(markdown, Options::ENABLE_TABLES).into_offset_iter() {
        match event {
            Event::Text(text) | Event::Code(text) if code_block.is_none() => {
                let buffer = inline.get_or_insert_with(|| (String::new(), line_of(range.start)));
                buffer.0.push(' ');
                buffer.0.push_str(&text);
                buffer.0.push(' ');
            }
            Event::Text(text) => {
                if let Some(block) = code_block.as_mut() {
                    block.0.push_str(&text);
                }
            }
            Event::SoftBreak | Event::HardBreak => {
                if let Some(buffer) = inline.as_mut() {
                    buffer.0.push('\n');
                }
            }
            Event::Start(Tag::CodeBlock(_)) => {
                flush(&mut inline, &mut row, &mut out);
                // The block's text starts on the line after the fence.
                code_block = Some((String::new(), line_of(range.start) + 1));
            }
            Event::End(TagEnd::CodeBlock) => {
                if let Some((text, line)) = code_block.take() {
                    scan(&text, line, &[], &mut out);
                    scan_curl(&text, line, &mut out, &mut problems);
                }
            }
            Event::Start(Tag::TableHead | Tag::TableRow) => row = Some(Vec::new()),
            Event::End(TagEnd::TableCell) => {
                let line = line_of(range.start);
                let cell = inline.take().unwrap_or_else(|| (String::new(), line));
                if let Some(cells) = row.as_mut() {
                    cells.push(cell);
                }
            }
            Event::End(TagEnd::TableHead | TagEnd::TableRow) => {
                scan_row(row.take().unwrap_or_default(), &mut out);
            }
            Event::Start(
                Tag::Emphasis
                | Tag::Strong
                | Tag::Strikethrough
                | Tag::Link { .. }
                | Tag::Image { .. },
            )
            | Event::End(
                TagEnd::Emphasis
                | TagEnd::Strong
                | TagEnd::Strikethrough
                | TagEnd::Link
                | TagEnd::Image,
            ) => {}
            Event::Start(Tag::TableCell) => {}
            _ => flush(&mut inline, &mut row, &mut out),
        }
    }
    flush(&mut inline, &mut row, &mut out);
    out.sort();
    out.dedup();
    (out, problems)
}

/// A table row: a cell holding only methods (`GET`, `GET/PATCH`) gives them to the paths of
/// the cell after it; every other cell is scanned on its own.
fn scan_row(cells: Vec<(String, usize)>, out: &mut Vec<Mention>) {
    let methods_in = |text: &str| -> Option<Vec<String>> {
        let words: Vec<String> = text
            .trim()
            .split(['/', ','])
            .map(|w| w.trim().to_owned())
            .collect();
        (!words.is_empty() && words.iter().all(|w| METHODS.contains(&w.as_str()))).then_some(words)
    };
    let method_cell = cells
        .iter()
        .position(|(text, _)| methods_in(text).is_some());
    for (index, (text, line)) in cells.iter().enumerate() {
        let defaults = match method_cell {
            Some(m) if index == m + 1 => methods_in(&cells[m].0).unwrap_or_default(),
            _ => Vec::new(),
        };
        scan(text, *line, &defaults, out);
    }
}

/// One operation of the document: its method and the query parameters it declares.
struct Operation {
    method: String,
    query: BTreeSet<String>,
}

/// The document's paths (templates such as `/api/v1/items/{id}`), each with its operations.
struct Operations(Vec<(String, Vec<Operation>)>);

impl Operations {
    fn of(doc: &Value) -> Self {
        let paths = doc["paths"].as_object().expect("the document has paths");
        let operations = paths
            .iter()
            .map(|(template, item)| {
                let item = item.as_object().expect("a path item is an object");
                let shared = query_names(item.get("parameters"));
                let methods = item
                    .iter()
                    .filter(|(method, _)| METHODS.contains(&method.to_uppercase().as_str()))
                    .map(|(method, operation)| {
                        let mut query = shared.clone();
                        query.extend(query_names(operation.get("parameters")));
                        Operation {
                            method: method.to_uppercase(),
                            query,
                        }
                    })
                    .collect();
                (template.clone(), methods)
            })
            .collect();
        Self(operations)
    }

    /// Why the mention names nothing the document has, or `None` when it does.
    fn unknown(&self, mention: &Mention) -> Option<String> {
        let wanted = segments(&mention.path);
        let on_path: Vec<&Operation> = self
            .0
            .iter()
            .filter(|(template, _)| segments(template) == wanted)
            .flat_map(|(_, operations)| operations.iter())
            .collect();
        if on_path.is_empty() && !self.0.iter().any(|(t, _)| segments(t) == wanted) {
            return Some("no such path".to_owned());
        }
        let candidates: Vec<&Operation> = on_path
            .iter()
            .copied()
            .filter(|op| mention.method.as_ref().is_none_or(|m| *m == op.method))
            .collect();
        if candidates.is_empty() {
            let allowed: Vec<&str> = on_path.iter().map(|op| op.method.as_str()).collect();
            return Some(format!("the path answers only {}", allowed.join(", ")));
        }
        let declares_all = |op: &&Operation| mention.query.iter().all(|q| op.query.contains(q));
        if !candidates.iter().any(declares_all) {
            let declared: BTreeSet<&String> =
                candidates.iter().flat_map(|op| op.query.iter()).collect();
            let missing: Vec<&String> = mention
                .query
                .iter()
                .filter(|q| !declared.contains(q))
                .collect();
            return Some(format!(
                "no query parameter {missing:?} there (it declares {declared:?})"
            ));
        }
        None
    }

    /// `(METHOD, template)` of every operation.
    fn all(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .flat_map(|(template, operations)| {
                operations
                    .iter()
                    .map(move |op| (op.method.clone(), template.clone()))
            })
            .collect()
    }
}

fn query_names(parameters: Option<&Value>) -> BTreeSet<String> {
    parameters
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|p| p["in"] == "query")
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect()
}

fn is_served_outside_the_document(path: &str) -> bool {
    SERVED_OUTSIDE_THE_DOCUMENT
        .iter()
        .any(|served| segments(served) == segments(path))
}

#[actix_web::test]
async fn every_route_the_guide_names_is_in_the_openapi_document() {
    let app = TestApp::spawn().await;
    let doc = app.get("/openapi.json", None).await.ok(200);
    let operations = Operations::of(&doc);
    let (found, problems) = mentions(&read_repo_file(GUIDE));
    assert!(
        found.len() > 50,
        "{GUIDE} names only {} routes; is the scanner broken?",
        found.len()
    );
    let mut unknown: Vec<String> = problems;
    for mention in &found {
        if is_served_outside_the_document(&mention.path) {
            continue;
        }
        if let Some(why) = operations.unknown(mention) {
            unknown.push(format!("{mention} — {why}"));
        }
    }
    assert!(
        unknown.is_empty(),
        "{GUIDE} names {} route(s) that the OpenAPI document (/openapi.json) does not have:\n  {}\n\
         Fix the guide, or document the route in the code.",
        unknown.len(),
        unknown.join("\n  ")
    );
    // What the guide names outside the document must still be served.
    for path in SERVED_OUTSIDE_THE_DOCUMENT {
        assert_eq!(app.get(path, None).await.status, 200, "GET {path}");
    }
}

#[actix_web::test]
async fn the_guide_names_every_operation_of_the_openapi_document() {
    let app = TestApp::spawn().await;
    let doc = app.get("/openapi.json", None).await.ok(200);
    let operations = Operations::of(&doc);
    let (found, _) = mentions(&read_repo_file(GUIDE));
    let missing: Vec<String> = operations
        .all()
        .into_iter()
        .filter(|(method, template)| {
            !found.iter().any(|m| {
                m.method.as_deref() == Some(method.as_str())
                    && segments(&m.path) == segments(template)
            })
        })
        .map(|(method, template)| format!("{method} {template}"))
        .collect();
    assert!(
        missing.is_empty(),
        "{GUIDE} does not mention these operations of the OpenAPI document (give each its \
         method, e.g. in the roles table):\n  {}",
        missing.join("\n  ")
    );
}

/// Links in the guide and the README resolve inside the repository (a user's clone has
/// nothing beside it), and the only web addresses are the local server's.
#[test]
fn the_guide_and_readme_link_only_inside_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut bad = Vec::new();
    for file in [GUIDE, "README.md"] {
        let markdown = read_repo_file(file);
        let base = root.join(file);
        let base = base.parent().expect("a file has a directory");
        for (event, range) in Parser::new_ext(&markdown, Options::ENABLE_TABLES).into_offset_iter()
        {
            let Event::Start(Tag::Link { dest_url, .. }) = event else {
                continue;
            };
            let line = markdown[..range.start].matches('\n').count() + 1;
            let url = dest_url.as_ref();
            let local = ["http://localhost", "http://127.0.0.1"]
                .iter()
                .any(|origin| url.starts_with(origin));
            if local {
                continue;
            }
            if let Some(anchor) = url.strip_prefix('#') {
                if !anchors_of(&markdown).contains(anchor) {
                    bad.push(format!("{file}:{line}: no heading makes the anchor {url}"));
                }
                continue;
            }
            if url.contains("://") || url.starts_with("mailto:") || url.starts_with("//") {
                bad.push(format!("{file}:{line}: {url} leaves the repository"));
                continue;
            }
            let target = base.join(url.split('#').next().unwrap_or(url));
            let inside = target
                .canonicalize()
                .is_ok_and(|t| t.starts_with(root.canonicalize().expect("the repository")));
            if !inside {
                bad.push(format!(
                    "{file}:{line}: {url} is not a file of this repository"
                ));
            }
        }
    }
    assert!(bad.is_empty(), "links:\n  {}", bad.join("\n  "));
    let readme = read_repo_file("README.md");
    assert!(
        readme.contains("](docs/API.md)"),
        "README.md links the guide, docs/API.md"
    );
}

/// The anchors GitHub gives headings: lower-case, punctuation dropped, spaces as `-`.
fn anchors_of(markdown: &str) -> BTreeSet<String> {
    let mut anchors = BTreeSet::new();
    let mut heading: Option<String> = None;
    for event in Parser::new_ext(markdown, Options::ENABLE_TABLES) {
        match event {
            Event::Start(Tag::Heading { .. }) => heading = Some(String::new()),
            Event::Text(text) | Event::Code(text) => {
                if let Some(h) = heading.as_mut() {
                    h.push_str(&text);
                }
            }
            Event::End(TagEnd::Heading(_)) => {
                if let Some(h) = heading.take() {
                    let slug: String = h
                        .to_lowercase()
                        .chars()
                        .filter_map(|c| match c {
                            ' ' => Some('-'),
                            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                            _ => None,
                        })
                        .collect();
                    anchors.insert(slug);
                }
            }
            _ => {}
        }
    }
    anchors
}

#[test]
fn the_scanner_reads_tables_code_spans_and_curl() {
    let markdown = "\
| method | path | who |
|---|---|---|
| GET/PATCH | `/api/v1/items/{id}` | staff |

See `POST /api/v1/items` and `/healthz`; text/csv and and/or are not routes.

```sh
curl -s $API/api/v1/items/42 \\
  -H \"Authorization: Bearer $TOKEN\" \\
  -d '{\"x\": 1}'
curl \"http://localhost:8080/api/v1/items?limit=2&sort=-name\"
```
";
    let (found, problems) = mentions(markdown);
    assert!(problems.is_empty(), "{problems:?}");
    let named: BTreeSet<String> = found
        .iter()
        .map(|m| {
            let method = m.method.as_deref().unwrap_or("*");
            format!("{} {method} {} {}", m.line, m.path, m.query.join(","))
        })
        .collect();
    for expected in [
        "3 GET /api/v1/items/{id} ",
        "3 PATCH /api/v1/items/{id} ",
        "5 POST /api/v1/items ",
        "5 * /healthz ",
        "8 POST /api/v1/items/42 ",
        "11 GET /api/v1/items limit,sort",
    ] {
        assert!(named.contains(expected), "{expected:?} not in {named:#?}");
    }
    assert!(
        !named
            .iter()
            .any(|n| n.contains("/csv") || n.contains("/or")),
        "{named:#?}"
    );
    assert_eq!(
        segments("/api/v1/items/{id}"),
        segments("/api/v1/items/$ITEM")
    );
    assert_ne!(
        segments("/api/v1/items/{id}"),
        segments("/api/v1/items/expired")
    );
}
