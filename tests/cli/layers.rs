//! Imports go one way: in `oauthtest` (`src/`) and in `oauthtest-mock-server`
//! (`mock-server/src/`), the top-level modules form layers, and no module reaches back up to
//! one that reaches it (docs/architecture.md draws the layers).
//!
//! The graph is read from the source: every `crate::m` (or `super::m` that climbs to the crate
//! root) in code names module `m`, and an item re-exported by the crate root (`crate::Name`) names
//! the module it comes from. Comments, doc links, string literals and `#[cfg(test)]` items
//! (test modules, inline or in their own file) are not code and do not count. The crate roots
//! (`lib.rs`, `main.rs`) sit on top: they may use everything and are not part of the graph.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Module -> the modules it uses.
type Graph = BTreeMap<String, BTreeSet<String>>;

/// The source text with comments, string and char literals blanked out (same length, so nothing
/// else moves), and nothing inside them read as code.
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let blank = |out: &mut Vec<u8>, bytes: &[u8]| {
        out.extend(bytes.iter().map(|&c| if c == b'\n' { b'\n' } else { b' ' }))
    };
    while i < b.len() {
        let rest = &b[i..];
        if rest.starts_with(b"//") {
            let end = rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len());
            blank(&mut out, &rest[..end]);
            i += end;
        } else if rest.starts_with(b"/*") {
            let (mut depth, mut j) = (0usize, 0);
            while j < rest.len() {
                if rest[j..].starts_with(b"/*") {
                    depth += 1;
                    j += 2;
                } else if rest[j..].starts_with(b"*/") {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            blank(&mut out, &rest[..j]);
            i += j;
        } else if let Some(len) = raw_string_len(rest, i == 0 || !is_ident(b[i - 1])) {
            blank(&mut out, &rest[..len]);
            i += len;
        } else if rest[0] == b'"' {
            let mut j = 1;
            while j < rest.len() && rest[j] != b'"' {
                j += if rest[j] == b'\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(rest.len());
            blank(&mut out, &rest[..end]);
            i += end;
        } else if rest[0] == b'\'' {
            // A char literal ('x', '\n', '\u{1F600}'), or a lifetime ('a), which stays.
            let len = if rest.get(1) == Some(&b'\\') {
                rest[2..].iter().position(|&c| c == b'\'').map(|p| p + 3)
            } else {
                let ch = std::str::from_utf8(&rest[1..rest.len().min(6)])
                    .ok()
                    .or_else(|| std::str::from_utf8(&rest[1..rest.len().min(5)]).ok())
                    .or_else(|| std::str::from_utf8(&rest[1..rest.len().min(4)]).ok())
                    .or_else(|| std::str::from_utf8(&rest[1..rest.len().min(3)]).ok())
                    .and_then(|s| s.chars().next())
                    .map_or(1, char::len_utf8);
                (rest.get(1 + ch) == Some(&b'\'')).then_some(ch + 2)
            };
            let len = len.unwrap_or(1);
            if len == 1 {
                out.push(b'\'');
            } else {
                blank(&mut out, &rest[..len]);
            }
            i += len;
        } else {
            out.push(rest[0]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("blanking keeps UTF-8 outside literals")
}

/// The length of a raw string literal (`r"…"`, `r#"…"#`, `br"…"`) starting here, if one does.
fn raw_string_len(rest: &[u8], at_token_start: bool) -> Option<usize> {
    if !at_token_start {
        return None;
    }
    let start = if rest.starts_with(b"br") {
        2
    } else if rest.starts_with(b"r") {
        1
    } else {
        return None;
    };
    let hashes = rest[start..].iter().take_while(|&&c| c == b'#').count();
    if rest.get(start + hashes) != Some(&b'"') {
        return None;
    }
    let close: Vec<u8> = std::iter::once(b'"')
        .chain(std::iter::repeat_n(b'#', hashes))
        .collect();
    let body = start + hashes + 1;
    let end = rest[body..]
        .windows(close.len())
        .position(|w| w == close.as_slice())?;
    Some(body + end + close.len())
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Removes every item marked `#[cfg(test)]` from `code` (already [`code_only`]), and returns the
/// names of the out-of-line modules so marked (`#[cfg(test)] mod tests;`): their files are
/// test code too.
fn without_test_items(code: &str) -> (String, Vec<String>) {
    let mut out = code.to_owned();
    let mut test_files = Vec::new();
    let mut from = 0;
    while let Some(at) = out[from..].find("#[cfg(test)]").map(|p| p + from) {
        let item = at + "#[cfg(test)]".len();
        let b = out.as_bytes();
        let mut j = item;
        let mut end = b.len();
        while j < b.len() {
            match b[j] {
                b';' => {
                    end = j + 1;
                    break;
                }
                b'{' => {
                    let mut depth = 0;
                    while j < b.len() {
                        match b[j] {
                            b'{' => depth += 1,
                            b'}' => {
                                depth -= 1;
                                if depth == 0 {
                                    break;
                                }
                            }
                            _ => {}
                        }
                        j += 1;
                    }
                    end = (j + 1).min(b.len());
                    break;
                }
                _ => j += 1,
            }
        }
        let text = &out[item..end];
        let words: Vec<&str> = text
            .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ';'))
            .filter(|w| !w.is_empty())
            .collect();
        if let Some(pos) = words.iter().position(|w| *w == "mod") {
            if let Some(name) = words.get(pos + 1) {
                if let Some(name) = name.strip_suffix(';') {
                    test_files.push(name.to_owned());
                }
            }
        }
        let blanked: String = out[at..end]
            .chars()
            .map(|c| if c == '\n' { '\n' } else { ' ' })
            .collect();
        out.replace_range(at..end, &blanked);
        from = at;
    }
    (out, test_files)
}

/// The identifier at the start of `s` (after spaces), and what follows it.
fn ident(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start();
    let len = s
        .char_indices()
        .find(|&(_, c)| !(c.is_alphanumeric() || c == '_'))
        .map_or(s.len(), |(i, _)| i);
    (len > 0).then(|| (&s[..len], &s[len..]))
}

/// The first segment of every path after `prefix` in `code`: `crate::a::b` gives `a`,
/// `crate::{a, b::c}` gives `a` and `b`.
fn first_segments<'a>(code: &'a str, prefix: &str) -> Vec<&'a str> {
    let mut found = Vec::new();
    for (at, _) in code.match_indices(prefix) {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$' || c == ':') {
            continue;
        }
        let rest = code[at + prefix.len()..].trim_start();
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level entries of the group only.
            let mut depth = 0;
            let mut entry_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => entry_start = true,
                    c if entry_start && depth == 0 && !c.is_whitespace() => {
                        entry_start = false;
                        if let Some((name, _)) = ident(&group[i..]) {
                            found.push(name);
                        }
                    }
                    _ => {}
                }
            }
        } else if let Some((name, _)) = ident(rest) {
            found.push(name);
        }
    }
    found
}

/// The top-level modules of the crate at `src` (declared in `lib.rs`), and for each, the
/// modules it uses in code.
fn module_graph(src: &Path) -> Graph {
    let root = fs::read_to_string(src.join("lib.rs")).expect("lib.rs");
    let root_code = code_only(&root);
    let (root_code, _) = without_test_items(&root_code);
    // `mod m;` / `pub mod m;` in lib.rs: the top-level modules.
    let mut modules = BTreeSet::new();
    for (at, _) in root_code.match_indices("mod ") {
        if at > 0 && root_code.as_bytes()[at - 1].is_ascii_alphanumeric() {
            continue;
        }
        if let Some((name, rest)) = ident(&root_code[at + 4..]) {
            if rest.trim_start().starts_with(';') {
                modules.insert(name.to_owned());
            }
        }
    }
    // `pub use m::{A, B}` / `pub use m::A` in lib.rs: which module a root name comes from.
    let mut reexported: BTreeMap<String, String> = BTreeMap::new();
    for stmt in root_code.split(';') {
        let Some(path) = stmt.trim().strip_prefix("pub use ") else {
            continue;
        };
        let path = path.trim().trim_start_matches("crate::");
        let Some((module, rest)) = ident(path) else {
            continue;
        };
        if !modules.contains(module) {
            continue;
        }
        let names = rest
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty() && *w != "as" && *w != "self");
        for name in names {
            reexported.insert(name.to_owned(), module.to_owned());
        }
    }

    let mut graph: Graph = modules
        .iter()
        .map(|m| (m.clone(), BTreeSet::new()))
        .collect();
    for module in &modules {
        let mut files = Vec::new();
        let file = src.join(format!("{module}.rs"));
        if file.is_file() {
            files.push((file, vec![module.clone()]));
        }
        let dir = src.join(module);
        if dir.is_dir() {
            rust_files(&dir, std::slice::from_ref(module), &mut files);
        }
        let mut test_files: BTreeSet<PathBuf> = BTreeSet::new();
        // Directories first, so a parent's `#[cfg(test)] mod x;` is known before x's file.
        files.sort_by_key(|(_, path)| path.len());
        for (file, path) in &files {
            if test_files.contains(file) {
                continue;
            }
            let text = fs::read_to_string(file).expect("a source file");
            let (code, tests) = without_test_items(&code_only(&text));
            // Where this file's own `mod x;` files live.
            let own_dir = if file.ends_with("mod.rs") {
                file.parent().unwrap().to_path_buf()
            } else {
                file.with_extension("")
            };
            for t in tests {
                test_files.insert(own_dir.join(format!("{t}.rs")));
                test_files.insert(own_dir.join(&t).join("mod.rs"));
                let nested = own_dir.join(&t);
                if nested.is_dir() {
                    let mut inner = Vec::new();
                    rust_files(&nested, &[], &mut inner);
                    test_files.extend(inner.into_iter().map(|(f, _)| f));
                }
            }
            let mut used: Vec<&str> = first_segments(&code, "crate::");
            // `super::` climbing to the crate root: from a file `depth` modules down.
            let depth = path.len();
            let supers = "super::".repeat(depth);
            used.extend(first_segments(&code, &supers));
            for name in used {
                let target = if modules.contains(name) {
                    Some(name.to_owned())
                } else {
                    reexported.get(name).cloned()
                };
                if let Some(target) = target {
                    if &target != module {
                        graph.get_mut(module).unwrap().insert(target);
                    }
                }
            }
        }
    }
    graph
}

/// Every `.rs` file under `dir`, with its module path (`mod.rs` is its directory's module).
fn rust_files(dir: &Path, path: &[String], out: &mut Vec<(PathBuf, Vec<String>)>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .expect("a source directory")
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for entry in entries {
        let stem = entry.file_stem().unwrap().to_string_lossy().into_owned();
        if entry.is_dir() {
            let mut sub = path.to_vec();
            sub.push(stem);
            rust_files(&entry, &sub, out);
        } else if entry.extension().is_some_and(|e| e == "rs") {
            let mut sub = path.to_vec();
            if stem != "mod" {
                sub.push(stem);
            }
            out.push((entry, sub));
        }
    }
}

/// A cycle in `graph`, as the modules along it (the first repeated at the end), if there is one.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit<'a>(
        node: &'a str,
        graph: &'a Graph,
        marks: &mut BTreeMap<&'a str, Mark>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        marks.insert(node, Mark::Open);
        stack.push(node);
        for next in graph.get(node).into_iter().flatten() {
            match marks.get(next.as_str()).copied().unwrap_or(Mark::New) {
                Mark::Open => {
                    let from = stack.iter().position(|n| n == next).unwrap();
                    let mut cycle: Vec<String> =
                        stack[from..].iter().map(|s| (*s).to_owned()).collect();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(cycle) = visit(next, graph, marks, stack) {
                        return Some(cycle);
                    }
                }
                Mark::Done => {}
            }
        }
        stack.pop();
        marks.insert(node, Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in graph.keys() {
        if marks.get(node.as_str()).copied().unwrap_or(Mark::New) == Mark::New {
            if let Some(cycle) = visit(node, graph, &mut marks, &mut Vec::new()) {
                return Some(cycle);
            }
        }
    }
    None
}

/// Asserts that the crate at `src` has no import circle among its top-level modules.
fn assert_layered(src: &str) {
    let graph = module_graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join(src));
    assert!(graph.len() > 5, "{src}: found only {graph:?}");
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "{src}: an import circle among top-level modules: {} (move what both need into a \
             lower module; docs/architecture.md draws the layers)",
            cycle.join(" -> ")
        );
    }
}

#[test]
fn oauthtest_modules_import_one_way() {
    assert_layered("src");
}

#[test]
fn mock_server_modules_import_one_way() {
    assert_layered("mock-server/src");
}

#[test]
fn the_reader_sees_code_only() {
    let code = r##"
        //! [`crate::a`] in a doc link
        /* crate::b */ use crate::{c, d::{e, f}};
        let s = "crate::g"; let r = r#"crate::h"#; let ch = '"'; fn x<'a>() {}
        use super::super::i;
        #[cfg(test)]
        mod tests { use crate::j; }
        #[cfg(test)]
        mod more;
        crate::k::call();
    "##;
    let (code, tests) = without_test_items(&code_only(code));
    assert_eq!(first_segments(&code, "crate::"), ["c", "d", "k"]);
    assert_eq!(first_segments(&code, "super::super::"), ["i"]);
    assert_eq!(tests, ["more"]);
    let graph: Graph = [("a", "b"), ("b", "c"), ("c", "a"), ("d", "a")]
        .iter()
        .map(|(from, to)| (from.to_string(), BTreeSet::from([to.to_string()])))
        .collect();
    assert_eq!(find_cycle(&graph).unwrap(), ["a", "b", "c", "a"]);
}
