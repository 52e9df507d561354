//! Extra YANG modules named at start (`--modules`, or `NETCONF_MODULES` as in the yuma123
//! image): by module name, looked up in the module path (`--module-path`,
//! `NETCONF_MODULE_PATH`), or by the path of a `.yang` file.
//!
//! A named module is implemented (its data, rpcs and notifications are served); the other
//! modules of the module path are only there to satisfy its imports, as yuma123's
//! `--modpath` does. Nothing of the module path is loaded unless a module is named.

use std::path::{Path, PathBuf};

/// Why an extra module cannot be found.
#[derive(Debug, thiserror::Error)]
pub enum ExtraModuleError {
    /// A module name matched no file in the module path.
    #[error(
        "YANG module {name:?} is not in the module path ({searched}): put {name}.yang (or \
         {name}@REVISION.yang) in one of those directories, or give the file's path"
    )]
    NotFound {
        /// The name as given.
        name: String,
        /// The directories searched, for the message.
        searched: String,
    },
    /// A path that was given is not a readable file.
    #[error("the YANG file {path} cannot be read: {source}")]
    File {
        /// The path as given.
        path: PathBuf,
        /// What the file system said.
        source: std::io::Error,
    },
    /// Copying into the server's module directory failed.
    #[error("cannot copy {path} among the server's YANG modules: {source}")]
    Copy {
        /// The file being copied.
        path: PathBuf,
        /// What the file system said.
        source: std::io::Error,
    },
}

/// Splits a module list as `NETCONF_MODULES` gives it: names or paths separated by spaces or
/// commas.
pub fn parse_list(list: &str) -> Vec<String> {
    list.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Splits a module path as `NETCONF_MODULE_PATH` gives it: directories separated by `:`.
pub fn parse_path(path: &str) -> Vec<PathBuf> {
    std::env::split_paths(path)
        .filter(|p| !p.as_os_str().is_empty())
        .collect()
}

/// Finds the file of each requested module: a request with a `/` or ending in `.yang` is a
/// path; any other is a module name (`name` or `name@revision`), and the file with the newest
/// revision of that name in the module path is chosen (searched recursively).
///
/// # Errors
/// A name that matches no file, or a path that is not a readable file.
pub fn resolve(
    requests: &[String],
    module_path: &[PathBuf],
) -> Result<Vec<PathBuf>, ExtraModuleError> {
    if requests.is_empty() {
        return Ok(Vec::new());
    }
    let available = yang_files(module_path, true);
    requests
        .iter()
        .map(|request| {
            if request.contains('/') || request.ends_with(".yang") {
                let path = PathBuf::from(request);
                std::fs::File::open(&path).map_err(|source| ExtraModuleError::File {
                    path: path.clone(),
                    source,
                })?;
                return Ok(path);
            }
            newest(&available, request)
                .cloned()
                .ok_or_else(|| ExtraModuleError::NotFound {
                    name: request.clone(),
                    searched: if module_path.is_empty() {
                        "empty: set NETCONF_MODULE_PATH or --module-path".to_string()
                    } else {
                        module_path
                            .iter()
                            .map(|d| d.display().to_string())
                            .collect::<Vec<_>>()
                            .join(":")
                    },
                })
        })
        .collect()
}

/// Puts the resolved modules into the server's module directory `dir`, where they are
/// implemented, and every module of the module path into a subdirectory of it, where libyang
/// finds their imports. A module whose file name the server already has (a built-in one) is
/// left as built in.
///
/// # Errors
/// A file that cannot be copied.
pub fn install(
    dir: &Path,
    modules: &[PathBuf],
    module_path: &[PathBuf],
) -> Result<(), ExtraModuleError> {
    if modules.is_empty() {
        return Ok(());
    }
    let copy = |from: &Path, to: &Path| -> Result<(), ExtraModuleError> {
        let failed = |source| ExtraModuleError::Copy {
            path: from.to_path_buf(),
            source,
        };
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(failed)?;
        }
        std::fs::copy(from, to).map(drop).map_err(failed)
    };
    for module in modules {
        let Some(name) = module.file_name() else {
            continue;
        };
        let target = dir.join(name);
        if target.exists() {
            tracing::info!(module = %module.display(), "the module is built in: the built-in one is used");
            continue;
        }
        copy(module, &target)?;
    }
    // Imports: the module path (with its subdirectories), and the directories of modules given
    // by path (without: such a directory may be any directory).
    let given_dirs = modules.iter().filter_map(|m| m.parent());
    let import_dirs = module_path
        .iter()
        .map(|d| (d.as_path(), true))
        .chain(given_dirs.map(|d| (d, false)));
    for (i, (from, recursive)) in import_dirs.enumerate() {
        let target = dir.join(format!("module-path-{i}"));
        for file in yang_files(&[from.to_path_buf()], recursive) {
            if let Ok(relative) = file.strip_prefix(from) {
                copy(&file, &target.join(relative))?;
            }
        }
    }
    Ok(())
}

/// The newest file of module `request` (`name` or `name@revision`) among `files`.
fn newest<'a>(files: &'a [PathBuf], request: &str) -> Option<&'a PathBuf> {
    let (name, revision) = match request.split_once('@') {
        Some((name, revision)) => (name, Some(revision)),
        None => (request, None),
    };
    files
        .iter()
        .filter_map(|file| {
            let stem = file.file_name()?.to_str()?.strip_suffix(".yang")?;
            let (file_name, file_revision) = match stem.split_once('@') {
                Some((n, r)) => (n, r),
                None => (stem, ""),
            };
            (file_name == name && revision.is_none_or(|r| r == file_revision))
                .then_some((file_revision, file))
        })
        // Revisions are dates: as strings they sort in time order; no revision sorts first.
        .max_by(|a, b| a.0.cmp(b.0))
        .map(|(_, file)| file)
}

/// Every `.yang` file in the directories, and in their subdirectories if `recursive` (dotfiles
/// and unreadable directories skipped), in a stable order.
fn yang_files(dirs: &[PathBuf], recursive: bool) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending: Vec<PathBuf> = dirs.to_vec();
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name();
            if name.as_encoded_bytes().starts_with(b".") {
                continue;
            }
            let path = entry.path();
            if path.is_dir() {
                if recursive {
                    pending.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "yang") {
                found.push(path);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "module x {}").unwrap();
    }

    #[test]
    fn lists_split_on_spaces_and_commas() {
        assert_eq!(parse_list(" a, b  c,,d\n"), ["a", "b", "c", "d"]);
        assert!(parse_list("").is_empty());
        assert_eq!(
            parse_path("/a::/b"),
            [PathBuf::from("/a"), PathBuf::from("/b")]
        );
    }

    /// A name finds its newest revision anywhere below the module path; a revision picks
    /// that one.
    #[test]
    fn a_name_resolves_to_its_newest_revision() {
        let dir = tempfile::tempdir().unwrap();
        touch(&dir.path().join("m@2020-01-01.yang"));
        touch(&dir.path().join("sub/m@2024-05-05.yang"));
        touch(&dir.path().join("other.yang"));
        let path = [dir.path().to_path_buf()];
        let found = resolve(&["m".into(), "other".into()], &path).unwrap();
        assert_eq!(found[0], dir.path().join("sub/m@2024-05-05.yang"));
        assert_eq!(found[1], dir.path().join("other.yang"));
        let pinned = resolve(&["m@2020-01-01".into()], &path).unwrap();
        assert_eq!(pinned[0], dir.path().join("m@2020-01-01.yang"));
    }

    /// A missing module says where it was looked for.
    #[test]
    fn a_missing_module_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let err = resolve(&["nope".into()], &[dir.path().to_path_buf()]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("\"nope\"") && text.contains(&dir.path().display().to_string()),
            "{text}"
        );
        let err = resolve(&["/no/such/file.yang".into()], &[]).unwrap_err();
        assert!(matches!(err, ExtraModuleError::File { .. }));
    }

    /// Named modules land at the top (implemented), the module path below (imports only), and
    /// a built-in file is not replaced.
    #[test]
    fn install_implements_only_what_was_named() {
        let search = tempfile::tempdir().unwrap();
        touch(&search.path().join("m.yang"));
        touch(&search.path().join("deps/dep.yang"));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("builtin.yang"), "built in").unwrap();
        let builtin = search.path().join("builtin.yang");
        touch(&builtin);
        let path = [search.path().to_path_buf()];
        let modules = resolve(&["m".into(), "builtin".into()], &path).unwrap();
        install(dir.path(), &modules, &path).unwrap();
        assert!(dir.path().join("m.yang").is_file());
        assert!(!dir.path().join("dep.yang").exists());
        assert!(dir.path().join("module-path-0/deps/dep.yang").is_file());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("builtin.yang")).unwrap(),
            "built in"
        );
    }
}
