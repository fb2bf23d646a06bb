//! The layers of the code, checked from the source: which module of a crate refers to which
//! (`crate::module` in non-test code). Every crate's module graph must be free of cycles, and
//! in `coffer-server` a module may use only modules of its own layer or below, in the order
//! ARCHITECTURE.md declares:
//! infrastructure → audit → state → authentication → services → HTTP surfaces → portal and
//! jobs → server.
//! Crates are kept in order by Cargo itself (core → crypto → store → audit → server → CLI).
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// `coffer-server`'s modules, bottom layer first.
const SERVER_LAYERS: &[(&str, &[&str])] = &[
    (
        "infrastructure",
        &[
            "api_version",
            "config",
            "config_file",
            "connections",
            "hardening",
            "host",
            "http",
            "key_cache",
            "keyring",
            "metrics",
            "seal",
            "sessions",
            "sign_in",
            "tls",
            "tokens",
        ],
    ),
    // `routes` names each route's audit operation where it is declared.
    ("audit", &["audit", "routes"]),
    ("state", &["state"]),
    ("authentication", &["authentication"]),
    (
        "services",
        &[
            "objects",
            "authorization",
            "directory",
            "system",
            "events",
            "vaults",
            "keys",
            "certificates",
            "lifetime_markers",
            "secrets",
        ],
    ),
    (
        "HTTP surfaces",
        &[
            "dataplane",
            "management",
            "identity",
            "audit_api",
            "directory_api",
            "graph",
            "authorization_api",
            "operator_api",
        ],
    ),
    // The dev tools run every job at once (`advance-time`), so they sit beside the jobs.
    ("portal, jobs and dev tools", &["portal", "jobs", "dev_bootstrap", "dev_api"]),
    // `app` assembles the application, `migration` moves a data directory to another seal,
    // `node` seals and unseals it, `server` serves it.
    ("server", &["app", "migration", "node", "server"]),
];

fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The top-level modules of a crate's `src/` and, for each, the modules it refers to.
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut modules = BTreeSet::new();
    for entry in std::fs::read_dir(src).expect("src") {
        let path = entry.expect("entry").path();
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
        if path.is_dir() || (path.extension().is_some_and(|e| e == "rs") && name != "lib" && name != "main") {
            modules.insert(name);
        }
    }
    let mut graph: BTreeMap<String, BTreeSet<String>> = modules.iter().map(|m| (m.clone(), BTreeSet::new())).collect();
    for file in rust_files(src) {
        let rel = file.strip_prefix(src).expect("under src");
        let first = rel.components().next().and_then(|c| c.as_os_str().to_str()).unwrap_or_default();
        let from = first.trim_end_matches(".rs").to_string();
        if !modules.contains(&from) {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("read");
        // Test modules sit at the bottom of a file; they may reach anywhere. Comments name
        // modules without importing them.
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let code: String = code.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
        for to in referenced_modules(&code) {
            if to != from && modules.contains(&to) {
                graph.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    graph
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// Names after `crate::`, including each name of a `crate::{a, b::c}` group.
fn referenced_modules(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                out.insert(name);
            }
        } else {
            out.insert(rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect());
        }
    }
    out
}

/// The modules on cycles, as sorted groups (strongly connected components of two or more).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    // Two modules are on one cycle when each reaches the other.
    let reach = |from: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_string()];
        while let Some(m) = todo.pop() {
            for next in graph.get(&m).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&String, BTreeSet<String>> = graph.keys().map(|m| (m, reach(m))).collect();
    let mut groups: BTreeSet<Vec<String>> = BTreeSet::new();
    for m in graph.keys() {
        let group: Vec<String> =
            graph.keys().filter(|o| *o == m || (reaches[m].contains(*o) && reaches[o].contains(m))).cloned().collect();
        if group.len() > 1 {
            groups.insert(group);
        }
    }
    groups.into_iter().collect()
}

#[test]
fn no_crate_has_an_import_cycle() {
    for krate in ["coffer-core", "coffer-crypto", "coffer-store", "coffer-audit", "coffer-server", "coffer"] {
        let graph = module_graph(&crates_dir().join(krate).join("src"));
        assert_eq!(cycles(&graph), Vec::<Vec<String>>::new(), "{krate} has an import cycle");
    }
}

#[test]
fn server_modules_import_only_their_layer_or_below() {
    let layer_of: BTreeMap<&str, usize> =
        SERVER_LAYERS.iter().enumerate().flat_map(|(i, (_, mods))| mods.iter().map(move |m| (*m, i))).collect();
    let graph = module_graph(&crates_dir().join("coffer-server").join("src"));
    for module in graph.keys() {
        assert!(
            layer_of.contains_key(module.as_str()),
            "module `{module}` has no layer: add it to SERVER_LAYERS (and to ARCHITECTURE.md)"
        );
    }
    let mut upward = BTreeSet::new();
    for (from, targets) in &graph {
        for to in targets {
            if layer_of[to.as_str()] > layer_of[from.as_str()] {
                upward.insert((from.clone(), to.clone()));
            }
        }
    }
    let name = |m: &str| SERVER_LAYERS[layer_of[m]].0;
    assert!(
        upward.is_empty(),
        "imports that run upward: {}",
        upward.iter().map(|(a, b)| format!("{a} ({}) -> {b} ({})", name(a), name(b))).collect::<Vec<_>>().join(", ")
    );
}

#[test]
fn the_check_sees_grouped_and_inline_paths() {
    let code = "use crate::{audit, http::ApiError};\nfn f() { crate::jobs::run(); }\n";
    let found = referenced_modules(code);
    assert!(["audit", "http", "jobs"].iter().all(|m| found.contains(*m)), "{found:?}");
    let mut g = BTreeMap::new();
    g.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    g.insert("b".to_string(), BTreeSet::from(["a".to_string()]));
    g.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(cycles(&g), vec![vec!["a".to_string(), "b".to_string()]]);
}

/// Control-surface routes are declared only through `crate::routes`, which makes every
/// method name its audit operation (or say it is not audited): no other module builds axum
/// method routers itself.
#[test]
fn routes_are_declared_only_with_their_operation() {
    let src = crates_dir().join("coffer-server").join("src");
    let mut offenders = Vec::new();
    for file in rust_files(&src) {
        if file.ends_with("routes.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("read");
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (i, line) in code.lines().enumerate() {
            let l = line.trim_start();
            if l.starts_with("//") {
                continue;
            }
            if l.contains("axum::routing") || l.contains("MethodRouter") || l.contains("Router::new().route") {
                offenders.push(format!("{}:{}: {l}", file.display(), i + 1));
            }
        }
    }
    assert!(offenders.is_empty(), "routes built without an operation:\n{}", offenders.join("\n"));
}

/// The files of a `coffer-server` module (`name.rs` or the `name/` directory).
fn module_files(src: &Path, module: &str) -> Vec<PathBuf> {
    let dir = src.join(module);
    if dir.is_dir() { rust_files(&dir) } else { vec![src.join(format!("{module}.rs"))] }
}

/// The public function signatures of a file's non-test code, each from `pub` to its body.
fn public_signatures(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("pub ") {
        let after = &rest[i..];
        let head = after.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
        let is_fn =
            ["pub fn", "pub async fn", "pub(crate) fn", "pub(crate) async fn"].iter().any(|p| head.starts_with(p));
        let end = after.find('{').unwrap_or(after.len());
        if is_fn {
            out.push(after[..end].to_string());
        }
        rest = &after[4..];
    }
    out
}

/// Services speak domain types: no axum type anywhere in them, and no untyped JSON
/// (`serde_json::Value`) in what they offer.
#[test]
fn services_have_no_http_types_and_no_untyped_json_in_their_signatures() {
    let src = crates_dir().join("coffer-server").join("src");
    let services = SERVER_LAYERS.iter().find(|(name, _)| *name == "services").expect("services layer").1;
    let mut offenders = Vec::new();
    for module in services {
        for file in module_files(&src, module) {
            let text = std::fs::read_to_string(&file).expect("read");
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            let code: String =
                code.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
            if code.contains("axum") {
                offenders.push(format!("{}: uses axum", file.display()));
            }
            for sig in public_signatures(&code) {
                if sig.split(|c: char| !c.is_alphanumeric() && c != '_').any(|word| word == "Value") {
                    offenders.push(format!(
                        "{}: {}",
                        file.display(),
                        sig.split_whitespace().collect::<Vec<_>>().join(" ")
                    ));
                }
            }
        }
    }
    assert!(offenders.is_empty(), "service signatures with HTTP or untyped JSON:\n{}", offenders.join("\n"));
}

#[test]
fn the_signature_check_sees_untyped_json() {
    let code = "pub async fn load(x: &str) -> Result<Option<Value>> {\n}\npub fn fine(v: SecretValue) {}\n";
    let sigs = public_signatures(code);
    assert_eq!(sigs.len(), 2);
    assert!(sigs[0].contains("Option<Value>"));
}
