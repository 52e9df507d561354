//! The server's own YANG modules, compiled into the binary so that `pyvmd serve` works from any
//! directory: `tailf-ncs`, `tailf-ncs-alarms`, `pyvmd-services`, `pyvmd-notifications`, the
//! standard NETCONF modules
//! (with those of RFC 5277 and RFC 6470 notifications), `ietf-system` (the users, with
//! `iana-crypt-hash` and `pyvmd-system-deviations`, which leaves out what manages the host),
//! and `tailf-common` for packages to import. `--yang-dir` adds modules to these.
//!
//! libyang loads modules from a directory, so the modules are written to a fresh directory at
//! start (with those of `--yang-dir` beside them), which lives as long as the server.

use std::path::Path;

/// The modules the server implements (file name, text).
const MODULES: &[(&str, &str)] = &[
    (
        "iana-crypt-hash@2014-08-06.yang",
        include_str!("../../yang/iana-crypt-hash@2014-08-06.yang"),
    ),
    (
        "ietf-netconf-acm@2018-02-14.yang",
        include_str!("../../yang/ietf-netconf-acm@2018-02-14.yang"),
    ),
    (
        "ietf-netconf-monitoring@2010-10-04.yang",
        include_str!("../../yang/ietf-netconf-monitoring@2010-10-04.yang"),
    ),
    (
        "ietf-netconf-notifications@2012-02-06.yang",
        include_str!("../../yang/ietf-netconf-notifications@2012-02-06.yang"),
    ),
    (
        "ietf-netconf-nmda@2019-01-07.yang",
        include_str!("../../yang/ietf-netconf-nmda@2019-01-07.yang"),
    ),
    (
        "ietf-netconf-with-defaults@2011-06-01.yang",
        include_str!("../../yang/ietf-netconf-with-defaults@2011-06-01.yang"),
    ),
    (
        "ietf-netconf@2011-06-01.yang",
        include_str!("../../yang/ietf-netconf@2011-06-01.yang"),
    ),
    (
        "ietf-origin@2018-02-14.yang",
        include_str!("../../yang/ietf-origin@2018-02-14.yang"),
    ),
    (
        "nc-notifications@2008-07-14.yang",
        include_str!("../../yang/nc-notifications@2008-07-14.yang"),
    ),
    (
        "notifications@2008-07-14.yang",
        include_str!("../../yang/notifications@2008-07-14.yang"),
    ),
    (
        "pyvmd-notifications.yang",
        include_str!("../../yang/pyvmd-notifications.yang"),
    ),
    (
        "ietf-system@2014-08-06.yang",
        include_str!("../../yang/ietf-system@2014-08-06.yang"),
    ),
    (
        "pyvmd-services.yang",
        include_str!("../../yang/pyvmd-services.yang"),
    ),
    (
        "pyvmd-system-deviations.yang",
        include_str!("../../yang/pyvmd-system-deviations.yang"),
    ),
    (
        "tailf-ncs-alarms.yang",
        include_str!("../../yang/tailf-ncs-alarms.yang"),
    ),
    ("tailf-ncs.yang", include_str!("../../yang/tailf-ncs.yang")),
];

/// Modules that are only imported (the `imports/` subdirectory).
const IMPORTS: &[(&str, &str)] = &[(
    "tailf-common.yang",
    include_str!("../../yang/imports/tailf-common.yang"),
)];

/// Writes the built-in modules into `dir` (which must exist), then copies the modules of
/// `extra` (its `*.yang` files, and those of its subdirectories as imports) beside them; a file
/// of `extra` with the name of a built-in one replaces it.
pub fn write_modules(dir: &Path, extra: Option<&Path>) -> std::io::Result<()> {
    let imports = dir.join("imports");
    std::fs::create_dir_all(&imports)?;
    for (name, text) in MODULES {
        std::fs::write(dir.join(name), text)?;
    }
    for (name, text) in IMPORTS {
        std::fs::write(imports.join(name), text)?;
    }
    let Some(extra) = extra else {
        return Ok(());
    };
    for entry in std::fs::read_dir(extra)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            let target = dir.join(entry.file_name());
            std::fs::create_dir_all(&target)?;
            for file in std::fs::read_dir(&path)? {
                let file = file?;
                if is_yang(&file.path()) {
                    std::fs::copy(file.path(), target.join(file.file_name()))?;
                }
            }
        } else if is_yang(&path) {
            std::fs::copy(&path, dir.join(entry.file_name()))?;
        }
    }
    Ok(())
}

fn is_yang(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "yang")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every module of the repository's `yang/` is built in, as it is in the repository.
    #[test]
    fn the_repository_modules_are_built_in() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("yang");
        let dir = tempfile::tempdir().unwrap();
        write_modules(dir.path(), None).unwrap();
        for sub in ["", "imports"] {
            for entry in std::fs::read_dir(repo.join(sub)).unwrap() {
                let path = entry.unwrap().path();
                if !is_yang(&path) {
                    continue;
                }
                let name = path.file_name().unwrap();
                let built_in = std::fs::read_to_string(dir.path().join(sub).join(name))
                    .unwrap_or_else(|_| panic!("{} is not built in", path.display()));
                assert_eq!(built_in, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
}
