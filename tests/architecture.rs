//! The module rule of `docs/architecture.md`: each module of `proxy/src` uses only the
//! modules its row lists, and the rows form no cycle. Read from the source as written
//! (`crate::module` outside comments, test files and test modules).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The repository's top.
fn top() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The allowed uses of each module, from the table between the markers.
fn allowed() -> BTreeMap<String, BTreeSet<String>> {
    let doc = fs::read_to_string(top().join("docs/architecture.md")).expect("read the doc");
    let start = doc
        .find("<!-- module-uses:begin -->")
        .expect("begin marker");
    let end = doc.find("<!-- module-uses:end -->").expect("end marker");
    let mut table = BTreeMap::new();
    for line in doc[start..end]
        .lines()
        .filter(|line| line.starts_with("| `"))
    {
        let cells: Vec<&str> = line.trim_matches('|').split('|').collect();
        let module = cells[0].trim().trim_matches('`').to_string();
        let uses = cells[1]
            .split(',')
            .map(|used| used.trim().trim_matches('`').to_string())
            .filter(|used| !used.is_empty())
            .collect();
        table.insert(module, uses);
    }
    table
}

/// The source files of a top-level module, tests left out.
fn sources(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_file() {
        out.push(path.to_path_buf());
        return;
    }
    for entry in fs::read_dir(path).expect("read a module folder") {
        let path = entry.expect("a directory entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name == "tests" || name.ends_with("tests.rs") {
            continue;
        }
        if path.is_dir() || name.ends_with(".rs") {
            sources(&path, out);
        }
    }
}

/// The modules each module of `proxy/src` uses.
fn actual(modules: &BTreeSet<String>) -> BTreeMap<String, BTreeSet<String>> {
    let src = top().join("proxy/src");
    let mut uses = BTreeMap::new();
    for module in modules {
        let mut files = Vec::new();
        let folder = src.join(module);
        let file = src.join(format!("{module}.rs"));
        sources(if folder.is_dir() { &folder } else { &file }, &mut files);
        let mut used = BTreeSet::new();
        for file in files {
            let text = fs::read_to_string(&file).expect("read a source file");
            let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
            for line in code.lines().map(str::trim).filter(|l| !l.starts_with("//")) {
                for (at, _) in line.match_indices("crate::") {
                    let name: String = line[at + "crate::".len()..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if modules.contains(&name) && &name != module {
                        used.insert(name);
                    }
                }
            }
        }
        uses.insert(module.clone(), used);
    }
    uses
}

/// The library's top-level modules, from `lib.rs`.
fn library_modules() -> BTreeSet<String> {
    let lib = fs::read_to_string(top().join("proxy/src/lib.rs")).expect("read lib.rs");
    lib.lines()
        .filter_map(|line| line.trim().strip_prefix("pub mod "))
        .chain(
            lib.lines()
                .filter_map(|line| line.trim().strip_prefix("mod ")),
        )
        .map(|name| name.trim_end_matches(';').to_string())
        .collect()
}

#[test]
fn every_module_uses_only_what_its_row_allows() {
    let allowed = allowed();
    let modules = library_modules();
    let missing: Vec<_> = modules
        .iter()
        .filter(|m| !allowed.contains_key(*m))
        .collect();
    assert!(
        missing.is_empty(),
        "modules without a row in docs/architecture.md: {missing:?}"
    );
    let mut violations = Vec::new();
    for (module, used) in actual(&modules) {
        for name in used.difference(&allowed[&module]) {
            violations.push(format!("{module} uses {name}"));
        }
    }
    assert!(
        violations.is_empty(),
        "uses that docs/architecture.md does not allow (add the arrow there, or remove the use): {violations:#?}"
    );
}

#[test]
fn the_allowed_uses_form_no_cycle() {
    let allowed = allowed();
    // Depth-first search for a back edge.
    fn visit(
        module: &str,
        allowed: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|m| m == module) {
            let mut cycle = path[at..].to_vec();
            cycle.push(module.to_string());
            return Some(cycle);
        }
        if done.contains(module) {
            return None;
        }
        path.push(module.to_string());
        for used in allowed.get(module).into_iter().flatten() {
            if let Some(cycle) = visit(used, allowed, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(module.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for module in allowed.keys() {
        let cycle = visit(module, &allowed, &mut Vec::new(), &mut done);
        assert!(
            cycle.is_none(),
            "a cycle in docs/architecture.md: {cycle:?}"
        );
    }
}
