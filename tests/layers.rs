//! The house check: imports in `src/` point down the layers of DESIGN.md, and no files of
//! `src/` or `loadgen/src/` import each other in a loop. It reads the crates' own `use` items and
//! paths (`crate::…`, `super::…`, `self::…`, a child module's name), follows a folder's
//! re-exports (`pub use child::Name` in a `mod.rs`) to the file that defines the name, and fails
//! naming every arrow that breaks a rule.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use syn::visit::Visit;

/// The layers of `src/`, top first. A module imports only modules of its own layer or below,
/// and modules of one layer import each other without a loop.
const LAYERS: &[&[&str]] = &[
    &["main"],
    &["app", "config", "demo"],
    &[
        "balance", "product", "coupon", "order", "platform", "webhook", "audit",
    ],
    &[
        "http",
        "store",
        "idempotency",
        "outbox",
        "events",
        "telemetry",
    ],
    &["ids", "money", "clock", "page", "bounds"],
];

/// Imports allowed to point up, each with the reason (at most three).
const UP: &[(&str, &str, &str)] = &[];

#[test]
fn imports_in_src_point_down_the_layers() {
    let crate_ = Crate::read(&root().join("src"), &["lib.rs", "main.rs"]);
    let mut wrong = Vec::new();
    let layer = |module: &str| LAYERS.iter().position(|l| l.contains(&module));
    let mut tops: BTreeSet<(String, String)> = BTreeSet::new();
    for (from, to) in crate_.arrows() {
        let (a, b) = (top(&from), top(&to));
        if a == b || a.is_empty() {
            continue;
        }
        tops.insert((a.to_owned(), b.to_owned()));
        match (layer(a), layer(b)) {
            (None, _) => wrong.push(format!("{a}: not in LAYERS; place it there")),
            (_, None) => wrong.push(format!("{b}: not in LAYERS; place it there")),
            (Some(la), Some(lb)) if la > lb && !UP.iter().any(|&(f, t, _)| f == a && t == b) => {
                wrong.push(format!("{from} imports {to}, a layer above it"))
            }
            _ => {}
        }
    }
    assert!(UP.len() <= 3, "at most three imports may point up");
    for circle in circles(&tops) {
        wrong.push(format!("modules in a loop: {}", circle.join(" -> ")));
    }
    wrong.sort();
    wrong.dedup();
    assert!(
        wrong.is_empty(),
        "the layers are broken:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_files_import_each_other_in_a_loop() {
    let mut found = Vec::new();
    for (dir, roots) in [
        ("src", &["lib.rs", "main.rs"][..]),
        ("loadgen/src", &["main.rs"]),
    ] {
        let crate_ = Crate::read(&root().join(dir), roots);
        let arrows: BTreeSet<(String, String)> = crate_.arrows().into_iter().collect();
        for circle in circles(&arrows) {
            found.push(format!("{dir}: {}", circle.join(" -> ")));
        }
    }
    assert!(found.is_empty(), "import circles:\n{}", found.join("\n"));
}

#[test]
fn the_check_sees_a_loop_and_an_arrow_up() {
    let arrows: BTreeSet<(String, String)> = [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")]
        .into_iter()
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect();
    assert_eq!(circles(&arrows), vec![vec!["a", "b", "c", "a"]]);
    // A real file of the project as seen by the reader: placing an order uses the coupon's rules.
    let src = Crate::read(&root().join("src"), &["lib.rs", "main.rs"]);
    assert!(
        src.modules.contains_key("order"),
        "the reader found the modules"
    );
    assert!(src
        .arrows()
        .iter()
        .any(|(from, to)| from.starts_with("order") && to.starts_with("store")));
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn top(module: &str) -> &str {
    module.split("::").next().unwrap_or(module)
}

/// One crate's files as modules (`order::placing`), with what each imports.
struct Crate {
    /// Module path → its file's imports and the names it re-exports (`pub use`).
    modules: BTreeMap<String, Module>,
}

#[derive(Default)]
struct Module {
    /// Paths used, each resolved from the crate root (`["store", "Conn"]`).
    uses: Vec<Vec<String>>,
    /// Name re-exported → the path it comes from, from the crate root.
    reexports: BTreeMap<String, Vec<String>>,
}

impl Crate {
    fn read(dir: &Path, roots: &[&str]) -> Crate {
        let mut modules = BTreeMap::new();
        for file in rust_files(dir) {
            let relative = file.strip_prefix(dir).expect("below dir");
            let name = module_name(relative, roots);
            let text = std::fs::read_to_string(&file).expect("readable source");
            let syntax = syn::parse_file(&text)
                .unwrap_or_else(|e| panic!("{} does not parse: {e}", file.display()));
            let is_bin = name == "main";
            let mut reader = Reader {
                here: name
                    .split("::")
                    .filter(|s| !s.is_empty() && !is_bin)
                    .map(String::from)
                    .collect(),
                is_face: relative.ends_with("mod.rs") || name.is_empty(),
                is_bin,
                children: if is_bin {
                    BTreeSet::new()
                } else {
                    children(&file, relative, roots)
                },
                module: Module::default(),
                public_use: false,
            };
            reader.visit_file(&syntax);
            modules.insert(name, reader.module);
        }
        Crate { modules }
    }

    /// File → file arrows (module names), re-exports followed to where a name is defined.
    fn arrows(&self) -> Vec<(String, String)> {
        let mut arrows = Vec::new();
        for (name, module) in &self.modules {
            for path in &module.uses {
                if let Some(target) = self.resolve(path, 0) {
                    if &target != name && !target.is_empty() {
                        arrows.push((name.clone(), target));
                    }
                }
            }
        }
        arrows
    }

    /// The module that defines what `path` names (a path from the crate root).
    fn resolve(&self, path: &[String], depth: usize) -> Option<String> {
        if depth > 8 {
            return None;
        }
        let longest = (1..=path.len())
            .rev()
            .map(|n| path[..n].join("::"))
            .find(|m| self.modules.contains_key(m));
        // A name the crate root hands on from another crate (`ids`, `money`): a module of its own.
        let Some(longest) = longest else {
            return path.first().cloned();
        };
        let module = &self.modules[&longest];
        let used = longest.split("::").count();
        // A folder's face hands on names of its children: follow them.
        if let Some(name) = path.get(used) {
            if let Some(source) = module.reexports.get(name) {
                let mut next = source.clone();
                next.extend(path[used + 1..].iter().cloned());
                return self.resolve(&next, depth + 1).or(Some(longest));
            }
        }
        Some(longest)
    }
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("readable dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// `order/placing.rs` → `order::placing`, `order/mod.rs` → `order`, a crate root → "" (the
/// binary's root of a crate with a library is `main`).
fn module_name(relative: &Path, roots: &[&str]) -> String {
    if roots.len() > 1 && relative == Path::new("main.rs") {
        return "main".into();
    }
    if roots.iter().any(|r| relative == Path::new(r)) {
        return String::new();
    }
    let mut parts: Vec<String> = relative
        .with_extension("")
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts.join("::")
}

/// The modules declared by a folder's face or a crate root: its sibling files and folders.
fn children(file: &Path, relative: &Path, roots: &[&str]) -> BTreeSet<String> {
    let face = relative.ends_with("mod.rs") || roots.iter().any(|r| relative == Path::new(r));
    let dir = if face {
        file.parent().map(Path::to_path_buf)
    } else {
        Some(file.with_extension(""))
    };
    let Some(dir) = dir.filter(|d| d.is_dir()) else {
        return BTreeSet::new();
    };
    std::fs::read_dir(&dir)
        .expect("readable dir")
        .filter_map(|e| {
            let path = e.ok()?.path();
            let stem = path.file_stem()?.to_string_lossy().into_owned();
            (path.is_dir()
                || (path.extension()? == "rs"
                    && stem != "mod"
                    && !roots.contains(&&*format!("{stem}.rs"))))
            .then_some(stem)
        })
        .collect()
}

/// Collects the paths a file uses.
struct Reader {
    /// This file's module path.
    here: Vec<String>,
    /// A folder's face (`mod.rs`) or the crate root: its `pub use` hands names on.
    is_face: bool,
    /// The binary beside a library: `commerce::…` is the library's root.
    is_bin: bool,
    /// Modules whose bare names reach a child of this one.
    children: BTreeSet<String>,
    module: Module,
    public_use: bool,
}

impl Reader {
    /// A path as written here, from the crate root; `None` for other crates and local names.
    fn absolute(&self, segments: &[String]) -> Option<Vec<String>> {
        let (first, rest) = segments.split_first()?;
        let mut path = match first.as_str() {
            "commerce" if self.is_bin => Vec::new(),
            "crate" if !self.is_bin => Vec::new(),
            "super" => {
                let mut up = self.here.clone();
                up.pop();
                let mut rest = rest;
                while rest.first().is_some_and(|s| s == "super") {
                    up.pop();
                    rest = &rest[1..];
                }
                up.extend(rest.iter().cloned());
                return Some(up);
            }
            "self" => self.here.clone(),
            name if self.children.contains(name) => {
                let mut p = self.here.clone();
                p.push(name.to_owned());
                p
            }
            _ => return None,
        };
        path.extend(rest.iter().cloned());
        Some(path)
    }

    fn record(&mut self, segments: Vec<String>, rename: Option<String>) {
        let Some(mut path) = self.absolute(&segments) else {
            return;
        };
        if path.last().is_some_and(|s| s == "*" || s == "self") {
            path.pop();
        }
        if self.public_use && self.is_face {
            if let Some(last) = segments.last().filter(|s| *s != "*" && *s != "self") {
                let name = rename.unwrap_or_else(|| last.to_owned());
                self.module.reexports.insert(name, path.clone());
            }
            // Handing on a name of its own folder is no arrow; one from elsewhere is.
            if path.starts_with(&self.here) {
                return;
            }
        }
        self.module.uses.push(path);
    }
    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                let mut path = prefix.clone();
                path.push(n.ident.to_string());
                self.record(path, None);
            }
            syn::UseTree::Rename(r) => {
                let mut path = prefix.clone();
                path.push(r.ident.to_string());
                self.record(path, Some(r.rename.to_string()));
            }
            syn::UseTree::Glob(_) => {
                let mut path = prefix.clone();
                path.push("*".into());
                self.record(path, None);
            }
            syn::UseTree::Group(g) => {
                for tree in &g.items {
                    self.use_tree(prefix, tree);
                }
            }
        }
    }
}

impl<'ast> Visit<'ast> for Reader {
    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        self.public_use = matches!(item.vis, syn::Visibility::Public(_))
            || matches!(item.vis, syn::Visibility::Restricted(_));
        self.use_tree(&mut Vec::new(), &item.tree);
        self.public_use = false;
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        if segments.len() > 1 {
            self.record(segments, None);
        }
        syn::visit::visit_path(self, path);
    }

    /// Unit tests inside a file are not part of the house.
    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        let test = item.attrs.iter().any(|a| {
            a.path().is_ident("cfg")
                && a.meta
                    .require_list()
                    .is_ok_and(|l| l.tokens.to_string() == "test")
        });
        if !test {
            syn::visit::visit_item_mod(self, item);
        }
    }
}

/// Every loop among `arrows` (strongly connected parts of more than one node), each as the
/// nodes in a path that comes back to its start.
fn circles(arrows: &BTreeSet<(String, String)>) -> Vec<Vec<String>> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (a, b) in arrows {
        next.entry(a).or_default().push(b);
        next.entry(b).or_default();
    }
    let reach = |from: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.to_owned()];
        while let Some(node) = stack.pop() {
            for &n in &next[node.as_str()] {
                if seen.insert(n.to_owned()) {
                    stack.push(n.to_owned());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&str, BTreeSet<String>> = next.keys().map(|&n| (n, reach(n))).collect();
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut found = Vec::new();
    for &node in next.keys() {
        if done.contains(node) || !reaches[node].contains(node) {
            continue;
        }
        // The nodes of its loop, in a walk from it back to it.
        let part: BTreeSet<String> = reaches[node]
            .iter()
            .filter(|m| reaches[m.as_str()].contains(node))
            .cloned()
            .collect();
        let mut walk = vec![node.to_owned()];
        let mut at = node.to_owned();
        let mut visited = BTreeSet::from([node.to_owned()]);
        loop {
            let step = next[at.as_str()]
                .iter()
                .find(|n| **n == node && walk.len() > 1)
                .or_else(|| {
                    next[at.as_str()]
                        .iter()
                        .find(|n| part.contains(**n) && !visited.contains(**n))
                })
                .or_else(|| next[at.as_str()].iter().find(|n| **n == node));
            let Some(&step) = step else { break };
            walk.push(step.to_owned());
            if step == node {
                break;
            }
            visited.insert(step.to_owned());
            at = step.to_owned();
        }
        if part.len() > walk.len() - 1 {
            let others: Vec<&String> = part.iter().filter(|m| !walk.contains(m)).collect();
            walk.push(format!("(and {others:?}, in the same loop)"));
        }
        done.extend(part);
        found.push(walk);
    }
    found
}
