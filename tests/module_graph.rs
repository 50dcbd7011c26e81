//! The module graph of `src/` stays one-way (ARCHITECTURE "Which module may use which").
//!
//! Reads every `src/**/*.rs`, drops comments, string and char literals, `#[cfg(test)]` items and
//! the files they declare (`#[cfg(test)] mod tests;`), and collects the paths that start with
//! `crate::`, `super::` or `self::` (in `use` trees too: `use crate::{a, b::c}`). Each path
//! resolved to a top-level module other than the file's own is an edge between top-level
//! modules; a path from one file of a folder to a sibling file (directly, or through an item
//! the folder's `mod.rs` re-exports from it) is an edge inside that folder. Fails, naming the
//! edge and where it is used, on a forbidden edge or a cycle.
//!
//! Comments are not code: a doc link to another module is not an edge.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};

/// Edges the architecture forbids, `(from, to)` between top-level modules.
const FORBIDDEN: &[(&str, &[&str])] = &[
    ("process", &["tail"]),
    ("checkpoint", &["tail", "sink"]),
    (
        "metrics",
        &[
            "agent",
            "discovery",
            "tail",
            "process",
            "sink",
            "checkpoint",
        ],
    ),
    ("tail", &["sink"]),
    ("sink", &["tail"]),
    ("config", &["agent"]),
];

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    /// `::`
    Path,
    Punct(char),
}

/// Tokens with their line numbers, without comments and literals.
fn tokens(src: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if c[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if let Some(len) = raw_string_start(&c, i) {
            // r"..", r#".."#, br#".."#: ends at a quote followed by as many hashes.
            let hashes = len - 2 - usize::from(c[i] == 'b');
            i += len;
            while i < c.len() {
                if c[i] == '"' && (1..=hashes).all(|k| at(i + k) == '#') {
                    i += 1 + hashes;
                    break;
                }
                if c[i] == '\n' {
                    line += 1;
                }
                i += 1;
            }
        } else if ch == '"' || ((ch == 'b' || ch == 'c') && at(i + 1) == '"') {
            i += if ch == '"' { 1 } else { 2 };
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    i += 1;
                }
                if at(i) == '\n' {
                    line += 1;
                }
                i += 1;
            }
            i += 1;
        } else if ch == '\'' || (ch == 'b' && at(i + 1) == '\'') {
            let q = if ch == '\'' { i } else { i + 1 };
            if at(q + 1) == '\\' {
                // An escaped char literal: past the escaped char, to the closing quote.
                i = q + 3;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(q + 2) == '\'' {
                i = q + 3;
            } else {
                // A lifetime or label: its name is read as an identifier next.
                i = q + 1;
            }
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            if word == "r" && at(i) == '#' {
                // A raw identifier, r#type: the name after the hash.
                i += 1;
                continue;
            }
            out.push((Tok::Ident(word), line));
        } else if ch.is_ascii_digit() {
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
        } else if ch == ':' && at(i + 1) == ':' {
            out.push((Tok::Path, line));
            i += 2;
        } else {
            out.push((Tok::Punct(ch), line));
            i += 1;
        }
    }
    out
}

/// The length of a raw string's opening (`r"`, `r#"`, `br##"`...) at `i`, if one starts there
/// (only called where a token starts).
fn raw_string_start(c: &[char], i: usize) -> Option<usize> {
    let mut j = i;
    if c.get(j) == Some(&'b') {
        j += 1;
    }
    if c.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    while c.get(j) == Some(&'#') {
        j += 1;
    }
    (c.get(j) == Some(&'"')).then_some(j + 1 - i)
}

fn ident(t: Option<&(Tok, usize)>) -> Option<&str> {
    match t {
        Some((Tok::Ident(s), _)) => Some(s),
        _ => None,
    }
}

fn punct(t: Option<&(Tok, usize)>, ch: char) -> bool {
    matches!(t, Some((Tok::Punct(p), _)) if *p == ch)
}

/// `#[cfg(test)]` at `i`: the index just past it.
fn cfg_test_at(t: &[(Tok, usize)], i: usize) -> Option<usize> {
    let inner = punct(t.get(i + 1), '!');
    let j = i + usize::from(inner);
    let ok = punct(t.get(i), '#')
        && punct(t.get(j + 1), '[')
        && ident(t.get(j + 2)) == Some("cfg")
        && punct(t.get(j + 3), '(')
        && ident(t.get(j + 4)) == Some("test")
        && punct(t.get(j + 5), ')')
        && punct(t.get(j + 6), ']');
    ok.then_some(j + 7)
}

const ITEM_KEYWORDS: &[&str] = &[
    "fn",
    "impl",
    "struct",
    "enum",
    "union",
    "trait",
    "mod",
    "async",
    "unsafe",
    "extern",
    "macro_rules",
];
const ENDS_AT_SEMICOLON: &[&str] = &["use", "const", "static", "type", "let"];

/// Removes `#[cfg(test)]` items (and a whole file under `#![cfg(test)]`); returns what is left
/// and the names of the modules declared as `#[cfg(test)] mod name;`.
fn strip_test_code(t: Vec<(Tok, usize)>) -> (Vec<(Tok, usize)>, Vec<String>) {
    let mut out = Vec::new();
    let mut test_mods = Vec::new();
    let mut i = 0;
    while i < t.len() {
        let Some(mut j) = cfg_test_at(&t, i) else {
            out.push(t[i].clone());
            i += 1;
            continue;
        };
        if punct(t.get(i + 1), '!') {
            return (Vec::new(), test_mods);
        }
        // Other attributes of the same item.
        while punct(t.get(j), '#') && punct(t.get(j + 1), '[') {
            j = skip_group(&t, j + 1);
        }
        // Visibility.
        let mut k = j;
        if ident(t.get(k)) == Some("pub") {
            k += 1;
            if punct(t.get(k), '(') {
                k = skip_group(&t, k);
            }
        }
        let first = ident(t.get(k)).unwrap_or("");
        if first == "mod" && punct(t.get(k + 2), ';') {
            if let Some(name) = ident(t.get(k + 1)) {
                test_mods.push(name.to_string());
            }
        }
        let item = ITEM_KEYWORDS.contains(&first);
        let semicolon_only = ENDS_AT_SEMICOLON.contains(&first);
        let mut depth = 0i32;
        while j < t.len() {
            match &t[j].0 {
                Tok::Punct('{' | '(' | '[') => depth += 1,
                Tok::Punct(close @ ('}' | ')' | ']')) => {
                    if depth == 0 {
                        break; // the end of what encloses the item: keep it
                    }
                    depth -= 1;
                    if depth == 0 && *close == '}' && !semicolon_only {
                        j += 1;
                        break;
                    }
                }
                Tok::Punct(';') if depth == 0 => {
                    j += 1;
                    break;
                }
                Tok::Punct(',') if depth == 0 && !item && !semicolon_only => {
                    j += 1;
                    break;
                }
                _ => {}
            }
            j += 1;
        }
        i = j;
    }
    (out, test_mods)
}

/// The index just past the bracketed group that opens at `i`.
fn skip_group(t: &[(Tok, usize)], i: usize) -> usize {
    let mut depth = 0;
    let mut j = i;
    while j < t.len() {
        match t[j].0 {
            Tok::Punct('{' | '(' | '[') => depth += 1,
            Tok::Punct('}' | ')' | ']') => {
                depth -= 1;
                if depth == 0 {
                    return j + 1;
                }
            }
            _ => {}
        }
        j += 1;
    }
    j
}

/// The paths of a path or use tree starting at `i` (its first segment there): each as its
/// segments. Returns them and the index just past the tree.
fn path_tree(t: &[(Tok, usize)], i: usize) -> (Vec<Vec<String>>, usize) {
    let mut prefix = Vec::new();
    let mut j = i;
    loop {
        match t.get(j) {
            Some((Tok::Ident(s), _)) => {
                prefix.push(s.clone());
                j += 1;
            }
            Some((Tok::Punct('{'), _)) => {
                // A group: each member below the prefix.
                let mut all = Vec::new();
                j += 1;
                while j < t.len() && !punct(t.get(j), '}') {
                    if punct(t.get(j), ',') {
                        j += 1;
                        continue;
                    }
                    let (members, next) = path_tree(t, j);
                    for m in members {
                        let mut p = prefix.clone();
                        p.extend(m.into_iter().filter(|s| s != "self"));
                        all.push(p);
                    }
                    j = next.max(j + 1);
                }
                return (all, j + 1);
            }
            _ => break,
        }
        if t.get(j).map(|x| &x.0) == Some(&Tok::Path) {
            j += 1;
        } else {
            break;
        }
    }
    // `as alias` names nothing new.
    if ident(t.get(j)) == Some("as") {
        j += 2;
    }
    (vec![prefix], j)
}

/// One `.rs` file of `src/`, as its module path (`["sink", "batcher"]`; a `mod.rs` is its
/// folder's module).
struct SourceFile {
    path: PathBuf,
    module: Vec<String>,
    tokens: Vec<(Tok, usize)>,
}

fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if let Some(last) = parts.pop() {
        let stem = last.trim_end_matches(".rs").to_string();
        if stem != "mod" && stem != "lib" && stem != "main" {
            parts.push(stem);
        }
    }
    parts
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The non-test files of `src/`, each tokenized with its test code removed.
fn load(src: &Path) -> Vec<SourceFile> {
    let mut paths = Vec::new();
    rs_files(src, &mut paths);
    let mut files = Vec::new();
    let mut test_files = BTreeSet::new();
    for path in paths {
        let rel = path.strip_prefix(src).unwrap_or(&path).to_path_buf();
        if rel == Path::new("main.rs") {
            continue; // its own crate: it names the library as kinesis_agent::
        }
        let text = fs::read_to_string(&path).unwrap_or_default();
        let (tokens, test_mods) = strip_test_code(tokens(&text));
        let module = module_of(&rel);
        for m in test_mods {
            let mut child = module.clone();
            child.push(m);
            test_files.insert(child);
        }
        files.push(SourceFile {
            path: rel,
            module,
            tokens,
        });
    }
    // A file under a test-only module is test code too.
    files.retain(|f| {
        !(1..=f.module.len()).any(|n| test_files.contains(&f.module[..n])) || f.module.is_empty()
    });
    files
}

/// A use of one module by another: the paths and where they are.
#[derive(Default)]
struct Graph {
    edges: BTreeMap<(String, String), Vec<String>>,
}

impl Graph {
    fn add(&mut self, from: &str, to: &str, at: String) {
        let uses = self
            .edges
            .entry((from.to_string(), to.to_string()))
            .or_default();
        if uses.len() < 3 {
            uses.push(at);
        }
    }

    fn nodes(&self) -> BTreeSet<&str> {
        self.edges
            .keys()
            .flat_map(|(a, b)| [a.as_str(), b.as_str()])
            .collect()
    }

    fn next(&self, from: &str) -> Vec<&str> {
        self.edges
            .keys()
            .filter(|(a, _)| a == from)
            .map(|(_, b)| b.as_str())
            .collect()
    }

    /// A shortest cycle through `start`, as its nodes from `start` back to `start`.
    fn cycle_from(&self, start: &str) -> Option<Vec<String>> {
        let mut came: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = VecDeque::from([start]);
        while let Some(n) = queue.pop_front() {
            for m in self.next(n) {
                if m == start {
                    let mut ring = vec![start.to_string()];
                    let mut at = n;
                    while at != start {
                        ring.push(at.to_string());
                        at = came[at];
                    }
                    ring.push(start.to_string());
                    ring.reverse();
                    return Some(ring);
                }
                if !came.contains_key(m) {
                    came.insert(m, n);
                    queue.push_back(m);
                }
            }
        }
        None
    }

    /// Each cycle once (one per set of modules on it), with where each of its edges is used.
    fn cycles(&self) -> Vec<String> {
        let mut seen: BTreeSet<BTreeSet<String>> = BTreeSet::new();
        let mut found = Vec::new();
        for n in self.nodes() {
            let Some(ring) = self.cycle_from(n) else {
                continue;
            };
            let members: BTreeSet<String> = ring.iter().cloned().collect();
            if !seen.insert(members) {
                continue;
            }
            let mut text = format!("cycle {}", ring.join(" -> "));
            for pair in ring.windows(2) {
                let uses = &self.edges[&(pair[0].clone(), pair[1].clone())];
                text += &format!("\n    {} -> {}: {}", pair[0], pair[1], uses.join(", "));
            }
            found.push(text);
        }
        found
    }
}

/// The top-level graph and the graph between sibling files of each folder.
fn graphs(files: &[SourceFile]) -> (Graph, Graph) {
    let tops: BTreeSet<&str> = files
        .iter()
        .filter_map(|f| f.module.first().map(String::as_str))
        .collect();
    let modules: BTreeSet<&[String]> = files.iter().map(|f| f.module.as_slice()).collect();
    // What each module re-exports from its children: (module, item) -> child.
    let mut reexports: BTreeMap<(Vec<String>, String), String> = BTreeMap::new();
    for f in files {
        let t = &f.tokens;
        for i in 0..t.len() {
            if ident(t.get(i)) == Some("pub") && ident(t.get(i + 1)) == Some("use") {
                let (paths, _) = path_tree(t, i + 2);
                for p in paths {
                    let mut child = f.module.clone();
                    child.push(p[0].clone());
                    if p.len() >= 2 && modules.contains(child.as_slice()) {
                        let item = p[p.len() - 1].clone();
                        reexports.insert((f.module.clone(), item), p[0].clone());
                    }
                }
            }
        }
    }
    let mut top = Graph::default();
    let mut folders = Graph::default();
    for f in files {
        let t = &f.tokens;
        // Inline modules (`mod names { .. }`) move `self` and `super` one level down.
        let mut inline: Vec<(String, i32)> = Vec::new();
        let mut depth = 0;
        let mut i = 0;
        while i < t.len() {
            match &t[i].0 {
                Tok::Punct('{') => {
                    if ident(t.get(i.wrapping_sub(2))) == Some("mod") {
                        if let Some(name) = ident(t.get(i - 1)) {
                            inline.push((name.to_string(), depth));
                        }
                    }
                    depth += 1;
                }
                Tok::Punct('}') => {
                    depth -= 1;
                    if inline.last().is_some_and(|(_, d)| *d == depth) {
                        inline.pop();
                    }
                }
                _ => {}
            }
            let starts = matches!(ident(t.get(i)), Some("crate" | "super" | "self"))
                && t.get(i + 1).map(|x| &x.0) == Some(&Tok::Path)
                && t.get(i.wrapping_sub(1)).map(|x| &x.0) != Some(&Tok::Path);
            if !starts {
                i += 1;
                continue;
            }
            let line = t[i].1;
            let (paths, next) = path_tree(t, i);
            let here: Vec<String> = f
                .module
                .iter()
                .cloned()
                .chain(inline.iter().map(|(n, _)| n.clone()))
                .collect();
            for p in paths {
                let Some(abs) = resolve(&here, &p) else {
                    continue;
                };
                let at = format!("src/{}:{line} ({})", f.path.display(), p.join("::"));
                let (Some(from), Some(to)) = (f.module.first(), abs.first()) else {
                    continue;
                };
                if from != to && tops.contains(to.as_str()) {
                    top.add(from, to, at.clone());
                }
                // Inside a folder: a file to a sibling file.
                let n = f.module.len();
                if n >= 2 && abs.len() >= n && abs[..n - 1] == f.module[..n - 1] {
                    let parent = &f.module[..n - 1];
                    let name = &abs[n - 1];
                    let mut sibling = parent.to_vec();
                    sibling.push(name.clone());
                    let target = if modules.contains(sibling.as_slice()) {
                        Some(name.clone())
                    } else {
                        reexports.get(&(parent.to_vec(), name.clone())).cloned()
                    };
                    if let Some(target) = target.filter(|s| *s != f.module[n - 1]) {
                        let folder = parent.join("/");
                        folders.add(
                            &format!("{folder}/{}", f.module[n - 1]),
                            &format!("{folder}/{target}"),
                            at,
                        );
                    }
                }
            }
            i = next.max(i + 1);
        }
    }
    (top, folders)
}

/// `path` (starting with `crate`, `super` or `self`) as seen from module `here`.
fn resolve(here: &[String], path: &[String]) -> Option<Vec<String>> {
    let mut abs = here.to_vec();
    let mut rest = path.iter().peekable();
    if rest.peek().map(|s| s.as_str()) == Some("crate") {
        abs.clear();
        rest.next();
    }
    while let Some(seg) = rest.peek() {
        match seg.as_str() {
            "super" => {
                abs.pop()?;
            }
            "self" => {}
            _ => break,
        }
        rest.next();
    }
    abs.extend(rest.cloned());
    Some(abs)
}

fn problems(top: &Graph, folders: &Graph) -> Vec<String> {
    let mut problems = Vec::new();
    for (from, tos) in FORBIDDEN {
        for to in *tos {
            if let Some(uses) = top.edges.get(&(from.to_string(), to.to_string())) {
                problems.push(format!(
                    "forbidden edge {from} -> {to}: {}",
                    uses.join(", ")
                ));
            }
        }
    }
    problems.extend(top.cycles());
    problems.extend(folders.cycles());
    problems
}

#[test]
fn the_module_graph_is_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = load(&src);
    assert!(
        files.len() > 20,
        "read only {} files of {}",
        files.len(),
        src.display()
    );
    let (top, folders) = graphs(&files);
    for (from, to) in top.edges.keys() {
        println!("{from} -> {to}");
    }
    let problems = problems(&top, &folders);
    assert!(
        problems.is_empty(),
        "the module graph of src/ (ARCHITECTURE \"Which module may use which\"):\n{}",
        problems.join("\n")
    );
}

/// The reading itself: literals, comments and test code name no module.
#[test]
fn literals_comments_and_test_code_are_not_edges() {
    let text = r##"
        //! [`crate::tail`] in a doc comment
        use crate::{config::FlowPlan, record::{self, Piece}};
        use super::queue::QueueSender;
        const S: &str = "crate::tail::x";
        const R: &str = r#"crate::sink"#;
        const C: char = '"';
        fn f<'a>(x: &'a str) -> bool { crate::sys::current_user(); x == "}" }
        /* crate::agent /* nested */ crate::agent */
        #[cfg(test)]
        impl Foo { fn g() { crate::tail::Tailer::new(); } }
        #[cfg(test)]
        mod tests;
        pub mod names { pub fn h() { super::Batch::new(); } }
    "##;
    let (t, test_mods) = strip_test_code(tokens(text));
    assert_eq!(test_mods, ["tests"]);
    let file = SourceFile {
        path: PathBuf::from("sink/batcher.rs"),
        module: vec!["sink".into(), "batcher".into()],
        tokens: t,
    };
    let queue = SourceFile {
        path: PathBuf::from("sink/queue.rs"),
        module: vec!["sink".into(), "queue".into()],
        tokens: tokens("use super::batcher::Batch;"),
    };
    let mut files = vec![file, queue];
    for name in ["agent", "config", "record", "sys", "tail"] {
        files.push(SourceFile {
            path: PathBuf::from(format!("{name}.rs")),
            module: vec![name.into()],
            tokens: Vec::new(),
        });
    }
    let (top, folders) = graphs(&files);
    let top_edges: Vec<_> = top.edges.keys().cloned().collect();
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    assert_eq!(
        top_edges,
        pairs(&[("sink", "config"), ("sink", "record"), ("sink", "sys")])
    );
    let cycles = folders.cycles();
    assert_eq!(cycles.len(), 1, "{cycles:?}");
    assert!(
        cycles[0].starts_with("cycle sink/batcher -> sink/queue -> sink/batcher"),
        "{}",
        cycles[0]
    );
}
