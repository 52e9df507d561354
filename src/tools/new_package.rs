//! `pyvmd new-package NAME`: writes a package skeleton that loads and runs as it is, as
//! `ncs-make-package --service-skeleton python` does for NSO: `package-meta-data.xml`, a YANG
//! module, the Python code and a test that drives a running server with ncclient.
//!
//! The files are templates (`src/tools/skeleton/`) with `@name@` (the package and YANG module
//! name), `@py@` (the Python package: the name with `_` for `-`), `@date@` (today, the
//! revision) and paths filled in.

use std::path::{Path, PathBuf};

/// What the package does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skeleton {
    /// An application with a configuration container.
    Plain,
    /// A service (`/ncs:services/NAME`) whose `cb_create` writes a result.
    Service,
    /// An action (`/NAME/double`).
    Action,
    /// A notification source posting on its own stream.
    NotificationSource,
}

impl Skeleton {
    /// The YANG and Python templates, and the test of this kind.
    fn templates(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Skeleton::Plain => (
                include_str!("skeleton/plain.yang"),
                include_str!("skeleton/plain.py"),
                include_str!("skeleton/test_plain.py"),
            ),
            Skeleton::Service => (
                include_str!("skeleton/service.yang"),
                include_str!("skeleton/service.py"),
                include_str!("skeleton/test_service.py"),
            ),
            Skeleton::Action => (
                include_str!("skeleton/action.yang"),
                include_str!("skeleton/action.py"),
                include_str!("skeleton/test_action.py"),
            ),
            Skeleton::NotificationSource => (
                include_str!("skeleton/source.yang"),
                include_str!("skeleton/source.py"),
                include_str!("skeleton/test_source.py"),
            ),
        }
    }

    fn description(self) -> &'static str {
        match self {
            Skeleton::Plain => "A Python application with its configuration",
            Skeleton::Service => "A service whose cb_create writes its result",
            Skeleton::Action => "An action implemented in Python",
            Skeleton::NotificationSource => "A notification source posting events on a stream",
        }
    }
}

/// The stream and source settings of a notification source (pyvmd's metadata extension).
const SOURCE_STREAM: &str = r#"
  <notification-stream xmlns="urn:pyvmd:package:1.0">
    <name>@name@</name>
    <description>Events of the @name@ package's source</description>
    <replay-support>true</replay-support>
  </notification-stream>
"#;
const SOURCE_SETTINGS: &str = r#"    <notification-source xmlns="urn:pyvmd:package:1.0">
      <stream>@name@</stream>
      <option><name>interval</name><value>2</value></option>
      <option><name>message</name><value>hello from @name@</value></option>
    </notification-source>
"#;

/// Why no skeleton was written.
#[derive(Debug, thiserror::Error)]
pub enum NewPackageError {
    /// The name cannot be a package, YANG module and Python package name at once.
    #[error(
        "{0:?} is not a usable package name: start with a letter, then letters, digits, '-' or \
         '_' (it names the package, its YANG module and, with '_' for '-', its Python package)"
    )]
    BadName(String),
    /// The destination exists: nothing is overwritten.
    #[error("{} exists already: choose another name or --dest", .0.display())]
    Exists(PathBuf),
    /// Writing failed.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// What the file system said.
        source: std::io::Error,
    },
}

/// Writes the skeleton of package `name` into `dest` (which must not exist) and returns the
/// files written.
///
/// # Errors
/// A bad name, an existing destination, or a write that fails.
pub fn create(name: &str, kind: Skeleton, dest: &Path) -> Result<Vec<PathBuf>, NewPackageError> {
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !name.to_ascii_lowercase().starts_with("xml");
    if !valid {
        return Err(NewPackageError::BadName(name.to_string()));
    }
    if dest.exists() {
        return Err(NewPackageError::Exists(dest.to_path_buf()));
    }
    let py = name.replace('-', "_");
    let packages = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let is_source = kind == Skeleton::NotificationSource;
    let fill = |template: &str| {
        template
            .replace("@stream@", if is_source { SOURCE_STREAM } else { "" })
            .replace("@source@", if is_source { SOURCE_SETTINGS } else { "" })
            .replace("@description@", kind.description())
            .replace("@date@", &chrono::Utc::now().format("%Y-%m-%d").to_string())
            .replace("@packages@", &packages.display().to_string())
            .replace("@dir@", &dest.display().to_string())
            .replace("@py@", &py)
            .replace("@name@", name)
    };
    let (yang, python, test) = kind.templates();
    let test = [
        include_str!("skeleton/test_header.py"),
        test,
        include_str!("skeleton/test_footer.py"),
    ]
    .concat();
    let files = [
        (
            PathBuf::from("package-meta-data.xml"),
            fill(include_str!("skeleton/package-meta-data.xml")),
        ),
        (
            PathBuf::from("README.md"),
            fill(include_str!("skeleton/README.md")),
        ),
        (PathBuf::from(format!("src/yang/{name}.yang")), fill(yang)),
        (
            PathBuf::from(format!("python/{py}/__init__.py")),
            String::new(),
        ),
        (PathBuf::from(format!("python/{py}/main.py")), fill(python)),
        (PathBuf::from(format!("test/test_{py}.py")), fill(&test)),
    ];
    let mut written = Vec::new();
    for (relative, text) in files {
        let path = dest.join(relative);
        let failed = |source| NewPackageError::Write {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(failed)?;
        }
        std::fs::write(&path, text).map_err(failed)?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::packages;

    /// Every kind gives a package that discovery reads as up, with no placeholder left.
    const PLACEHOLDERS: &[&str] = &[
        "@name@",
        "@py@",
        "@date@",
        "@dir@",
        "@packages@",
        "@stream@",
        "@source@",
        "@description@",
    ];

    #[test]
    fn every_skeleton_is_a_valid_package() {
        let root = tempfile::tempdir().unwrap();
        let kinds = [
            ("plain-pkg", Skeleton::Plain),
            ("svc", Skeleton::Service),
            ("act", Skeleton::Action),
            ("src-pkg", Skeleton::NotificationSource),
        ];
        for (name, kind) in kinds {
            let files = create(name, kind, &root.path().join(name)).unwrap();
            for file in files {
                let text = std::fs::read_to_string(&file).unwrap();
                for placeholder in PLACEHOLDERS {
                    assert!(!text.contains(placeholder), "{}", file.display());
                }
            }
        }
        let set = packages::discover(root.path());
        assert_eq!(set.packages.len(), 4);
        for p in &set.packages {
            assert!(p.status.is_up(), "{}: {:?}", p.name, p.error_info);
        }
        let source = set.get("src-pkg").unwrap();
        assert_eq!(source.streams.len(), 1);
    }

    #[test]
    fn bad_names_and_existing_directories_are_refused() {
        let root = tempfile::tempdir().unwrap();
        for name in ["", "1abc", "a b", "a/b", "xml-thing"] {
            let err = create(name, Skeleton::Plain, &root.path().join("x")).unwrap_err();
            assert!(matches!(err, NewPackageError::BadName(_)), "{name}");
        }
        let err = create("ok", Skeleton::Plain, root.path()).unwrap_err();
        assert!(matches!(err, NewPackageError::Exists(_)));
    }
}
