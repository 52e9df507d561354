//! Model quality: our own YANG modules pass `pyang --strict` and `yanglint` without a word.
//!
//! The server's libyang rejects a module that does not compile, but other tools are stricter
//! (NSO's `ncsc` is built on pyang): unused imports, XPath that names no node, revisions out of
//! order and the like are only warnings, which nobody sees at run time. A warning fails this
//! test as an error does, so that the output stays empty and a new finding is noticed.
//!
//! Our modules are those of `yang/` whose file name carries no revision (the third-party ones,
//! shipped verbatim, are named `name@revision.yang`) and every `packages/*/src/yang/*.yang`, so
//! that a new module or example package is covered without touching this file. The
//! third-party modules and `yang/imports/` are only on the search path, with every package's
//! YANG directory (packages may import each other's modules).
//!
//! pyang also reports what it finds in the modules a module imports, naming the imported file.
//! Diagnostics that name a file which is not ours are dropped: a verbatim third-party module is
//! not ours to fix (`ietf-netconf-notifications@2012-02-06`, for one, draws a warning about an
//! XPath in RFC 6470 itself). Such warnings leave pyang's exit status 0; an error anywhere
//! makes it 1, and fails the test with pyang's whole output. yanglint does not compile the
//! XPath of modules that are only imported, so its output is taken whole.
//!
//! The linters are a Python (pip) and a Debian package, not crates: without one of them the
//! test prints a loud notice and passes, except under CI (`CI=true`), where that is a failure.
//! `.ci/run` installs both.

mod common;
use common::ci;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `*.yang` files directly in `dir`, sorted.
fn yang_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_file() && path.extension().is_some_and(|e| e == "yang"))
        .collect();
    files.sort();
    files
}

/// Every `packages/*/src/yang` directory, sorted.
fn package_yang_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(repo().join("packages"))
        .expect("reading packages/")
        .map(|entry| entry.expect("a directory entry").path().join("src/yang"))
        .filter(|dir| dir.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// Our modules, relative to the repository: `yang/*.yang` without a revision in the file name,
/// then the packages' modules.
fn our_modules() -> Vec<PathBuf> {
    let mut modules: Vec<PathBuf> = yang_files(&repo().join("yang"))
        .into_iter()
        .filter(|path| !path.file_name().unwrap().to_string_lossy().contains('@'))
        .collect();
    for dir in package_yang_dirs() {
        modules.extend(yang_files(&dir));
    }
    let modules: Vec<PathBuf> = modules
        .into_iter()
        .map(|path| path.strip_prefix(repo()).unwrap().to_path_buf())
        .collect();
    // Guards against a discovery that finds nothing and so checks nothing.
    for expected in ["yang/tailf-ncs.yang", "yang/tailf-ncs-alarms.yang"] {
        assert!(
            modules.iter().any(|m| m == Path::new(expected)),
            "{expected} not among {modules:?}"
        );
    }
    assert!(
        modules.iter().any(|m| m.starts_with("packages")),
        "no package module among {modules:?}"
    );
    modules
}

/// The search path, relative to the repository: `yang`, `yang/imports` and every package's YANG
/// directory.
fn search_path() -> Vec<PathBuf> {
    let mut path = vec![PathBuf::from("yang"), PathBuf::from("yang/imports")];
    path.extend(
        package_yang_dirs()
            .into_iter()
            .map(|dir| dir.strip_prefix(repo()).unwrap().to_path_buf()),
    );
    path
}

/// Whether `tool --version` runs. If not: panics under CI, otherwise prints a notice.
fn have(tool: &str, install: &str) -> bool {
    match Command::new(tool).arg("--version").output() {
        Ok(out) if out.status.success() => return true,
        Ok(out) => {
            let what = format!("`{tool} --version` failed: {}", text(&out));
            assert!(!ci(), "CI=true and {what}");
        }
        Err(e) => assert!(!ci(), "CI=true and {tool} cannot run ({e}); {install}"),
    }
    let _ = writeln!(
        std::io::stderr(),
        "\n{bar}\nSKIPPED: {tool} is not installed ({install}); our YANG modules are not \
         linted\n{bar}\n",
        bar = "!".repeat(78)
    );
    false
}

/// stdout and stderr together.
fn text(out: &Output) -> String {
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    text
}

fn run(command: &mut Command) -> Output {
    command
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| panic!("running {command:?}: {e}"))
}

/// Panics with every module's findings, if any.
fn report(tool: &str, failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{tool} has findings in {} of our modules:\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The file a pyang diagnostic (`file:line: severity: message`) names, if the line is one.
fn diagnostic_file(line: &str) -> Option<&str> {
    let (file, rest) = line.split_once(':')?;
    let (line_number, _) = rest.split_once(':')?;
    let is_module = file.ends_with(".yang") || file.ends_with(".yin");
    (is_module && line_number.parse::<u32>().is_ok()).then_some(file)
}

/// The lines of pyang's output `all` without the diagnostics about files that are not among
/// `ours` (canonical paths); lines that are not diagnostics (a traceback, a usage error) stay.
fn ours_only<'a>(all: &'a str, ours: &BTreeSet<PathBuf>) -> Vec<&'a str> {
    all.lines()
        .filter(|line| match diagnostic_file(line) {
            Some(file) => repo()
                .join(file)
                .canonicalize()
                .is_ok_and(|file| ours.contains(&file)),
            None => true,
        })
        .collect()
}

#[test]
fn pyang_filter_drops_only_third_party_diagnostics() {
    let ours = BTreeSet::from([repo().join("yang/tailf-ncs.yang").canonicalize().unwrap()]);
    let third_party = "yang/ietf-netconf-notifications@2012-02-06.yang:286: warning: node \
                       \"ietf-netconf-notifications::confirm-event\" is not found";
    let our_warning = "yang/tailf-ncs.yang:12: warning: imported module \"x\" not used";
    let absolute = format!("{}/yang/tailf-ncs.yang:3: error: bad", repo().display());
    let all =
        format!("{third_party}\n{our_warning}\nTraceback (most recent call last):\n{absolute}\n");
    assert_eq!(
        ours_only(&all, &ours),
        [
            our_warning,
            "Traceback (most recent call last):",
            absolute.as_str()
        ]
    );
}

#[test]
fn pyang_strict_is_silent_on_our_modules() {
    if !have("pyang", "pip install pyang") {
        return;
    }
    let modules = our_modules();
    let ours: BTreeSet<PathBuf> = modules
        .iter()
        .map(|m| repo().join(m).canonicalize().expect("our module's path"))
        .collect();
    let path = std::env::join_paths(search_path()).expect("a search path");
    let mut failures = Vec::new();
    for module in &modules {
        let out = run(Command::new("pyang")
            .arg("--strict")
            .arg("-p")
            .arg(&path)
            .arg(module)
            .env_remove("YANG_MODPATH"));
        let all = text(&out);
        let kept = ours_only(&all, &ours);
        // An error in a third-party module also makes pyang exit 1: the output is then shown
        // whole.
        if !kept.is_empty() || !out.status.success() {
            let shown = if kept.is_empty() {
                all.trim_end().to_string()
            } else {
                kept.join("\n")
            };
            failures.push(format!(
                "pyang --strict {} ({}):\n{shown}\n",
                module.display(),
                out.status
            ));
        }
    }
    report("pyang --strict", failures);
}

#[test]
fn yanglint_is_silent_on_our_modules() {
    if !have("yanglint", "Debian package libyang-tools") {
        return;
    }
    let mut failures = Vec::new();
    for module in our_modules() {
        let mut command = Command::new("yanglint");
        // -D: the working directory (the repository's root) is not searched.
        command.arg("-D");
        for dir in search_path() {
            command.arg("-p").arg(dir);
        }
        let out = run(command.arg(&module));
        let all = text(&out);
        if !all.trim().is_empty() || !out.status.success() {
            failures.push(format!(
                "yanglint {} ({}):\n{}\n",
                module.display(),
                out.status,
                all.trim_end()
            ));
        }
    }
    report("yanglint", failures);
}
