//! `pyvmd check-packages DIR`: loads a packages directory as `serve` would, without serving
//! it, and says what is wrong, file and line first, for editors and CI logs.
//!
//! Three passes, each over what the one before left standing, as at a server start: the
//! metadata and dependencies ([`packages::discover`]), the YANG (compiled on top of the
//! server's modules, with `--yang-dir` and `--modules` as `serve` takes them), and the Python
//! (every component's class imported in a VM of its `vm-name`, with the same `sys.path`; no
//! `setup()` runs). A package that requires a failing one is reported too: it would not load.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::netconf::capabilities::MODULE_FEATURES;
use crate::runtime::import_check;
use crate::runtime::packages::{self, OperStatus, PackageSet};
use crate::yang::YangContext;

/// Where the YANG modules come from, as for `serve`.
#[derive(Debug, Clone, Default)]
pub struct SchemaOptions {
    /// `--yang-dir`.
    pub yang_dir: Option<PathBuf>,
    /// `--modules`.
    pub extra_modules: Vec<String>,
    /// `--module-path`.
    pub module_path: Vec<PathBuf>,
}

/// One problem, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The package it belongs to.
    pub package: String,
    /// The file to look at.
    pub file: PathBuf,
    /// The line in it, when known.
    pub line: Option<u32>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Finding {
    /// `file:line: package: message` on one line, the form editors and CI logs link.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, "{line}:")?;
        }
        let message: Vec<&str> = self.message.split_whitespace().collect();
        write!(f, " {}: {}", self.package, message.join(" "))
    }
}

/// What `check` found.
#[derive(Debug, Default)]
pub struct Report {
    /// Every package, with its version and whether it passed.
    pub packages: Vec<(String, Option<String>, bool)>,
    /// The problems.
    pub findings: Vec<Finding>,
}

/// Checks the packages of `dir`. `exe` is the `pyvmd` executable (for the check VMs).
///
/// # Errors
/// `dir` is not a directory, or the server's own modules do not load (a `--modules` module
/// that is not found or does not compile).
pub async fn check(dir: &Path, schema: &SchemaOptions, exe: PathBuf) -> anyhow::Result<Report> {
    anyhow::ensure!(
        dir.is_dir(),
        "{} is not a directory (give the directory that holds the packages, one per \
         subdirectory)",
        dir.display()
    );
    let mut set = packages::discover(dir);
    let mut report = Report::default();
    let mut reported: BTreeSet<String> = BTreeSet::new();
    for p in &set.packages {
        if !p.status.is_up() {
            report.findings.push(metadata_finding(p));
            reported.insert(p.name.clone());
        }
    }

    let module_dir = crate::server::module_directory(
        schema.yang_dir.as_deref(),
        &schema.extra_modules,
        &schema.module_path,
    )?;
    let (_, yang_failures) =
        YangContext::load_with_packages(module_dir.path(), &set.yang_sources(), MODULE_FEATURES)
            .context("the server's own YANG modules do not load")?;
    for (package, message) in &yang_failures {
        report.findings.push(yang_finding(&set, package, message));
        reported.insert(package.clone());
    }
    set.mark_yang_failures(&yang_failures);
    // Those that require a package whose YANG failed.
    for p in &set.packages {
        if !p.status.is_up() && !reported.contains(&p.name) {
            report.findings.push(metadata_finding(p));
            reported.insert(p.name.clone());
        }
    }

    let logs = tempfile::Builder::new()
        .prefix("pyvmd-check-")
        .tempdir()
        .context("creating a directory for the check VMs' logs")?;
    for problem in import_check::check_imports(&set, exe, logs.path().to_path_buf()).await {
        report.findings.push(import_finding(&set, problem));
    }

    // Paths as the user would type them: relative to the working directory when below it.
    if let Ok(cwd) = std::env::current_dir() {
        for finding in &mut report.findings {
            if let Ok(relative) = finding.file.strip_prefix(&cwd) {
                finding.file = relative.to_path_buf();
            }
        }
    }
    let failed: Vec<&str> = report.findings.iter().map(|f| f.package.as_str()).collect();
    report.packages = set
        .packages
        .iter()
        .map(|p| {
            (
                p.name.clone(),
                p.version.clone(),
                !failed.contains(&p.name.as_str()),
            )
        })
        .collect();
    Ok(report)
}

/// A package that discovery (or a dependency's YANG) left down: its metadata file, at the line
/// the message points to.
fn metadata_finding(p: &packages::Package) -> Finding {
    let file = p.meta_data_file();
    let info = p.error_info.clone().unwrap_or_default();
    // Discovery prefixes the file; here it leads the line already.
    let info = info
        .strip_prefix(&format!("{}: ", file.display()))
        .map(str::to_string)
        .unwrap_or(info);
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    let line = match &p.status {
        OperStatus::MissingDependency { package, .. } => {
            line_of(&text, &format!("<name>{package}</name>")).or_else(|| line_of(&text, package))
        }
        _ => locate(&text, &info),
    };
    Finding {
        package: p.name.clone(),
        file,
        line,
        message: format!("{}: {info}", p.status.as_str()),
    }
}

/// A package whose YANG does not compile: the file and line libyang names, when it names them.
fn yang_finding(set: &PackageSet, package: &str, message: &str) -> Finding {
    let dir = set.get(package).map(|p| p.dir.clone()).unwrap_or_default();
    let yang_dir = dir.join("src/yang");
    // libyang names the module, not the file: the package's file of that module.
    let file = quoted_names(message)
        .into_iter()
        .find_map(|name| {
            let exact = yang_dir.join(format!("{name}.yang"));
            exact.is_file().then_some(exact)
        })
        .or_else(|| {
            std::fs::read_dir(&yang_dir)
                .ok()?
                .flatten()
                .map(|e| e.path())
                .find(|p| {
                    p.extension().is_some_and(|x| x == "yang")
                        && message.contains(&*p.file_name().unwrap_or_default().to_string_lossy())
                })
        })
        .unwrap_or(yang_dir);
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    let message = message
        .trim()
        .strip_prefix(&format!("{}: ", file.display()))
        .unwrap_or(message.trim());
    // libyang gives a line for syntax errors; for others, the quoted name (a type, a
    // prefix...) or the last node of the schema path it names.
    let line = number_after(message, "line number ")
        .or_else(|| number_after(message, "line "))
        .or_else(|| locate(&text, message))
        .or_else(|| {
            let path = message.split("(path ").nth(1)?;
            let node = path.trim_end_matches(['.', ')']).rsplit('/').next()?;
            let node = node.rsplit(':').next()?;
            text.lines()
                .position(|l| l.split_whitespace().nth(1) == Some(node))
                .and_then(|i| u32::try_from(i + 1).ok())
        });
    Finding {
        package: package.to_string(),
        line,
        file,
        message: format!("YANG: {message}"),
    }
}

/// A component whose class cannot be imported: the Python file and line, else the metadata
/// line that names the class.
fn import_finding(set: &PackageSet, problem: crate::vm::protocol::ImportProblem) -> Finding {
    let message = if problem.component.is_empty() {
        problem.message
    } else {
        format!(
            "component {} ({}): {}",
            problem.component, problem.class_name, problem.message
        )
    };
    let (file, line) = match problem.file {
        Some(file) => (file, problem.line),
        None => {
            let file = set
                .get(&problem.package)
                .map(|p| p.meta_data_file())
                .unwrap_or_default();
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            let line = (!problem.class_name.is_empty())
                .then(|| line_of(&text, problem.class_name.trim()))
                .flatten();
            (file, line)
        }
    };
    Finding {
        package: problem.package,
        file,
        line,
        message,
    }
}

/// The line a message points to in `text`: its `at byte N`, else the first line holding one of
/// its quoted words.
fn locate(text: &str, message: &str) -> Option<u32> {
    if let Some(byte) = number_after(message, "at byte ") {
        let byte = (byte as usize).min(text.len());
        let before = text.get(..byte).unwrap_or(text);
        return u32::try_from(before.matches('\n').count() + 1).ok();
    }
    quoted_names(message)
        .into_iter()
        .find_map(|word| line_of(text, &word))
        .or_else(|| {
            // An element named as `<name>`.
            let element = message.split('<').nth(1)?.split('>').next()?;
            line_of(text, &format!("<{element}"))
        })
}

/// The 1-based number of the first line of `text` that contains `needle`.
fn line_of(text: &str, needle: &str) -> Option<u32> {
    if needle.is_empty() {
        return None;
    }
    let index = text.lines().position(|l| l.contains(needle))?;
    u32::try_from(index + 1).ok()
}

/// The number that follows `marker` in `text` (case-insensitive marker).
fn number_after(text: &str, marker: &str) -> Option<u32> {
    let lower = text.to_lowercase();
    let at = lower.find(&marker.to_lowercase())? + marker.len();
    let digits: String = lower[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The words of `text` in double quotes.
fn quoted_names(text: &str) -> Vec<String> {
    text.split('"')
        .skip(1)
        .step_by(2)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_byte_offset_becomes_a_line() {
        let text = "<a>\n<b>\n</a>\n";
        assert_eq!(locate(text, "mismatched end tag (at byte 9)"), Some(3));
        assert_eq!(locate(text, "unknown element \"b\""), Some(2));
        assert_eq!(locate(text, "unknown element <b> in <a>"), Some(2));
        assert_eq!(locate(text, "no hint"), None);
    }

    #[test]
    fn findings_read_like_compiler_errors() {
        let finding = Finding {
            package: "p".into(),
            file: "packages/p/package-meta-data.xml".into(),
            line: Some(4),
            message: "bad".into(),
        };
        assert_eq!(
            finding.to_string(),
            "packages/p/package-meta-data.xml:4: p: bad"
        );
        let no_line = Finding {
            line: None,
            ..finding
        };
        assert_eq!(
            no_line.to_string(),
            "packages/p/package-meta-data.xml: p: bad"
        );
    }

    #[test]
    fn numbers_and_quotes_are_found() {
        assert_eq!(
            number_after("Parsing failed (Line number 12.)", "line number "),
            Some(12)
        );
        assert_eq!(quoted_names(r#"module "a" imports "b""#), ["a", "b"]);
    }
}
