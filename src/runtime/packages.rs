//! Packages: reading `packages/<dir>/package-meta-data.xml`, resolving the dependencies between
//! packages, grouping the Python packages into VMs, and the operational `/ncs:packages` tree.
//!
//! [`discover`] never fails as a whole: NSO loads every package it can, and a broken package is
//! reported in its own `oper-status` (with `error-info`) rather than stopping the others. The
//! result is a [`PackageSet`] in which every package is either [`OperStatus::Up`] ("can be
//! loaded": metadata valid, files present, every requirement satisfied) or carries the reason
//! why not. `Up` here is the verdict of discovery only; the supervisor that runs the VMs refines
//! it (`python-uninitialized` while a VM is not running, `program-code-error` when code fails).
//!
//! Choices where NSO leaves room, or where we deliberately differ:
//! - `python-package` is optional, as in NSO (its own package skeletons leave it commented out):
//!   a package with a `python-class-name` anywhere runs in a VM named after the package with the
//!   `threading` model. [`Package::python`] therefore holds the *effective* Python settings.
//! - NSO applies `vm-name` only with `callpoint-model threading`; a `multiprocessing` package
//!   gets a VM of its own, named after the package (a differing `vm-name` is logged and ignored).
//! - Unknown elements in the metadata namespace are errors (NSO validates the file against its
//!   schema, and a misspelt `required-package` or `python-class-name` would otherwise silently
//!   change what runs). NSO's elements that mean nothing to pyvmd (`templates`,
//!   `supported-ned-id`, ...) are accepted and ignored, as are elements in other namespaces.
//! - A sub-directory without `package-meta-data.xml` is a broken package (the YANG says
//!   "missing or invalid"); hidden directories (`.git`, ...) and plain files are skipped.
//! - `ncs-min-version` / `ncs-max-version` are reported but not checked: pyvmd is not an NSO
//!   release, so there is no version to check them against.
//! - A `python/use_venv` that names a missing virtualenv makes the package `file-load-error`:
//!   the package would otherwise start and then fail on its first import, further from the cause.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use super::streams;
use crate::netconf::xml::{self, Element};
use crate::notify::StreamSpec;
use crate::vm::protocol::SourceSettings;

/// The namespace of `package-meta-data.xml`.
pub const PACKAGES_NS: &str = "http://tail-f.com/ns/ncs-packages";

/// The namespace of the operational `/ncs:packages` tree (module `tailf-ncs`).
pub const NCS_NS: &str = "http://tail-f.com/ns/ncs";

/// The metadata file every package directory holds.
pub const META_DATA_FILE: &str = "package-meta-data.xml";

/// Elements of NSO's package metadata that pyvmd accepts and ignores: they concern templates,
/// NEDs, the web UI or the build, none of which pyvmd has. `directory` is computed, not read.
const IGNORED_TOP_LEVEL: &[&str] = &[
    "display-name",
    "single-sign-on-url",
    "directory",
    "templates",
    "template-loading-mode",
    "supported-ned-id",
    "supported-ned-id-match",
    "build-info",
];

/// All packages found in a packages directory, sorted by name (then directory).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageSet {
    /// The packages, broken ones included.
    pub packages: Vec<Package>,
}

/// One package: its metadata and its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// The name from the metadata; the directory name when the metadata gives none.
    pub name: String,
    /// The package directory (absolute).
    pub dir: PathBuf,
    /// `package-version`, validated against the package-version pattern.
    pub version: Option<String>,
    /// `description`.
    pub description: Option<String>,
    /// `ncs-min-version` entries (reported, not checked).
    pub ncs_min_versions: Vec<String>,
    /// `ncs-max-version` entries (reported, not checked).
    pub ncs_max_versions: Vec<String>,
    /// The effective Python settings: `Some` when the package declares `python-package` or has
    /// any Python component (see the module documentation).
    pub python: Option<PythonPackage>,
    /// `required-package` entries, in file order.
    pub requires: Vec<Requirement>,
    /// `component` entries, in file order.
    pub components: Vec<Component>,
    /// The notification streams it declares (`notification-stream`, pyvmd's extension).
    pub streams: Vec<StreamSpec>,
    /// The package's `python/` directory, when it exists.
    pub python_dir: Option<PathBuf>,
    /// The `site-packages` directories of the virtualenv named by `python/use_venv`.
    pub use_venv_site_dirs: Vec<PathBuf>,
    /// Whether the package can be used, and if not, why.
    pub status: OperStatus,
    /// Details when `status` is not [`OperStatus::Up`].
    pub error_info: Option<String>,
}

/// The `python-package` settings of a package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonPackage {
    /// The VM the package runs in (packages with the same name share one).
    pub vm_name: String,
    /// How callbacks are run.
    pub callpoint_model: CallpointModel,
}

/// `python-package/callpoint-model`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CallpointModel {
    /// Callbacks run in threads of the VM (NSO's default).
    #[default]
    Threading,
    /// Callbacks run in worker processes.
    Multiprocessing,
}

impl CallpointModel {
    /// The YANG enum name.
    pub fn as_str(self) -> &'static str {
        match self {
            CallpointModel::Threading => "threading",
            CallpointModel::Multiprocessing => "multiprocessing",
        }
    }
}

/// A `required-package` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// The required package's name.
    pub name: String,
    /// The lowest acceptable version.
    pub min_version: Option<String>,
    /// The highest acceptable version.
    pub max_version: Option<String>,
}

impl Requirement {
    /// True if a package of `version` satisfies the requirement. A package without a version
    /// satisfies only a requirement without bounds: its version cannot be shown to be in range.
    pub fn accepts(&self, version: Option<&str>) -> bool {
        if self.min_version.is_none() && self.max_version.is_none() {
            return true;
        }
        let Some(version) = version else {
            return false;
        };
        let above_min = self
            .min_version
            .as_deref()
            .is_none_or(|min| compare_versions(version, min) != Ordering::Less);
        let below_max = self
            .max_version
            .as_deref()
            .is_none_or(|max| compare_versions(version, max) != Ordering::Greater);
        above_min && below_max
    }

    /// The version reported in `missing-dependency/package-version`: the minimum if there is
    /// one (what NSO reports as "the required version"), else the maximum.
    pub fn wanted_version(&self) -> Option<String> {
        self.min_version
            .clone()
            .or_else(|| self.max_version.clone())
    }

    /// The bounds in words, for error messages.
    fn bounds(&self) -> String {
        match (&self.min_version, &self.max_version) {
            (Some(min), Some(max)) => format!("min-version {min}, max-version {max}"),
            (Some(min), None) => format!("min-version {min}"),
            (None, Some(max)) => format!("max-version {max}"),
            (None, None) => "any version".to_string(),
        }
    }
}

/// A `component` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    /// The component name (unique within the package).
    pub name: String,
    /// What the component is.
    pub kind: ComponentKind,
    /// For an application component that is a notification source: its stream and options
    /// (`notification-source`, pyvmd's extension).
    pub source: Option<SourceSettings>,
}

impl Component {
    /// The Python class to run, for an application component with a non-empty class name.
    pub fn application_class(&self) -> Option<&str> {
        match &self.kind {
            ComponentKind::Application { class_name, .. } if !class_name.is_empty() => {
                Some(class_name)
            }
            _ => None,
        }
    }
}

/// The kind of a component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComponentKind {
    /// `application/python-class-name`: a long-running component. An empty class name marks a
    /// Python library package; nothing runs.
    Application {
        /// `module.Class` (possibly empty).
        class_name: String,
        /// When it starts.
        start_phase: StartPhase,
    },
    /// `upgrade/python-class-name`: run once, in a short-lived VM, when the package is upgraded.
    Upgrade {
        /// `module.Class`.
        class_name: String,
    },
    /// Anything pyvmd does not run (`ned`, `callback`, Java application or upgrade), described
    /// in words such as `"ned"` or `"application (java)"`.
    Other(String),
}

/// `application/start-phase`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum StartPhase {
    /// Started before the phase-2 components.
    Phase1,
    /// Started last; NSO's default.
    #[default]
    Phase2,
}

impl StartPhase {
    /// The YANG enum name.
    pub fn as_str(self) -> &'static str {
        match self {
            StartPhase::Phase1 => "phase1",
            StartPhase::Phase2 => "phase2",
        }
    }
}

/// A package's `oper-status`, as `tailf-ncs.yang` defines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperStatus {
    /// The package can be (or is) in use.
    Up,
    /// The package's Python VM is not running.
    PythonUninitialized,
    /// A required package is absent, not up, or of a version outside the required range.
    MissingDependency {
        /// The required package.
        package: String,
        /// The required version, when the requirement names one.
        version: Option<String>,
    },
    /// The package's requirements lead back to itself.
    CircularDependency,
    /// `ncs-min-version` / `ncs-max-version` rule this server out.
    BadNcsVersion,
    /// `package-meta-data.xml` is missing or invalid.
    PackageMetaDataError,
    /// A file of the package could not be loaded.
    FileLoadError,
    /// The package's code failed.
    ProgramCodeError,
}

impl OperStatus {
    /// True for [`OperStatus::Up`].
    pub fn is_up(&self) -> bool {
        matches!(self, OperStatus::Up)
    }

    /// The YANG node name of the status.
    pub fn as_str(&self) -> &'static str {
        match self {
            OperStatus::Up => "up",
            OperStatus::PythonUninitialized => "python-uninitialized",
            OperStatus::MissingDependency { .. } => "missing-dependency",
            OperStatus::CircularDependency => "circular-dependency",
            OperStatus::BadNcsVersion => "bad-ncs-version",
            OperStatus::PackageMetaDataError => "package-meta-data-error",
            OperStatus::FileLoadError => "file-load-error",
            OperStatus::ProgramCodeError => "program-code-error",
        }
    }
}

impl Package {
    /// The path of the package's metadata file.
    pub fn meta_data_file(&self) -> PathBuf {
        self.dir.join(META_DATA_FILE)
    }

    /// The application components that run (non-empty class name), phase 1 before phase 2 and
    /// otherwise in file order.
    pub fn applications(&self) -> Vec<&Component> {
        let mut apps: Vec<(StartPhase, &Component)> = self
            .components
            .iter()
            .filter_map(|c| match &c.kind {
                ComponentKind::Application { start_phase, .. }
                    if c.application_class().is_some() =>
                {
                    Some((*start_phase, c))
                }
                _ => None,
            })
            .collect();
        // A stable sort keeps the file order within a phase.
        apps.sort_by_key(|(phase, _)| *phase);
        apps.into_iter().map(|(_, c)| c).collect()
    }

    /// True if the package is a Python library: an application component has an empty
    /// `python-class-name`.
    pub fn is_library(&self) -> bool {
        self.components.iter().any(|c| {
            matches!(&c.kind, ComponentKind::Application { class_name, .. } if class_name.is_empty())
        })
    }

    /// A package that could not be read: only the name and the reason are known.
    fn broken(name: String, dir: PathBuf, status: OperStatus, info: String) -> Package {
        Package {
            name,
            dir,
            version: None,
            description: None,
            ncs_min_versions: Vec::new(),
            ncs_max_versions: Vec::new(),
            python: None,
            requires: Vec::new(),
            components: Vec::new(),
            streams: Vec::new(),
            python_dir: None,
            use_venv_site_dirs: Vec::new(),
            status,
            error_info: Some(info),
        }
    }
}

/// The packages that share one Python VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmGroup<'a> {
    /// The VM name.
    pub vm_name: String,
    /// The member packages in dependency order (required packages first).
    pub packages: Vec<&'a Package>,
    /// `sys.path` additions: each member's `python/` directory followed by those of the
    /// packages it requires, transitively; first occurrence wins.
    pub sys_path: Vec<PathBuf>,
    /// The members' virtualenv `site-packages` directories, first occurrence wins.
    pub site_dirs: Vec<PathBuf>,
}

impl VmGroup<'_> {
    /// True if any member has an application component to run. A VM without one (only library
    /// packages, or only upgrade components) is not started: it would run nothing, and NSO
    /// shows no status entry for it either.
    pub fn has_applications(&self) -> bool {
        self.packages.iter().any(|p| !p.applications().is_empty())
    }

    /// The names of the member packages, in dependency order.
    pub fn package_names(&self) -> Vec<&str> {
        self.packages.iter().map(|p| p.name.as_str()).collect()
    }

    /// The callpoint model of the VM: `multiprocessing` if a member asks for it. Members of a
    /// shared VM normally all use threading, since NSO ignores `vm-name` for multiprocessing.
    pub fn callpoint_model(&self) -> CallpointModel {
        let multi = self.packages.iter().any(|p| {
            p.python
                .as_ref()
                .is_some_and(|py| py.callpoint_model == CallpointModel::Multiprocessing)
        });
        if multi {
            CallpointModel::Multiprocessing
        } else {
            CallpointModel::Threading
        }
    }
}

/// Reads every package under `packages_dir` and resolves their dependencies.
///
/// A missing or unreadable packages directory gives an empty set (logged when it exists but
/// cannot be read). Broken packages are included with their status and logged as warnings.
pub fn discover(packages_dir: &Path) -> PackageSet {
    let base = std::path::absolute(packages_dir).unwrap_or_else(|_| packages_dir.to_path_buf());
    let entries = match fs::read_dir(&base) {
        Ok(entries) => entries,
        Err(e) => {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!("cannot read packages directory {}: {e}", base.display());
            }
            return PackageSet::default();
        }
    };
    let mut packages = Vec::new();
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                tracing::warn!("cannot read packages directory {}: {e}", base.display());
                continue;
            }
        };
        let file_name = entry.file_name();
        let dir_name = file_name.to_string_lossy().into_owned();
        if dir_name.starts_with('.') {
            continue;
        }
        let dir = entry.path();
        // fs::metadata follows symlinks: a symlinked package directory is a package.
        if !fs::metadata(&dir).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        packages.push(load_package(&dir, &dir_name));
    }
    let set = PackageSet::from_packages(packages);
    for p in &set.packages {
        if let Some(info) = p.error_info.as_deref().filter(|_| !p.status.is_up()) {
            // One warning per package that will not load, broken or a victim of another's
            // failure, logged here once the dependencies are resolved.
            tracing::warn!(
                package = %p.name,
                status = p.status.as_str(),
                "package not loaded: {info}"
            );
        }
    }
    set
}

impl PackageSet {
    /// Builds a set from packages read elsewhere: sorts them by name (then directory) and
    /// resolves the dependencies of those that are up. Exposed for tests and for callers that
    /// construct packages directly.
    pub fn from_packages(mut packages: Vec<Package>) -> PackageSet {
        packages.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.dir.cmp(&b.dir)));
        mark_duplicates(&mut packages);
        let index = name_index(&packages);
        mark_cycles(&mut packages, &index);
        mark_missing(&mut packages, &index);
        PackageSet { packages }
    }

    /// The YANG of the packages that are up, each after those it requires: every `*.yang`
    /// file in the package's `src/yang/`, in file-name order.
    pub fn yang_sources(&self) -> Vec<crate::yang::PackageYang> {
        let index = name_index(&self.packages);
        dependency_order(&self.packages, &index, |p| p.status.is_up())
            .into_iter()
            .map(|i| &self.packages[i])
            .filter_map(|p| {
                let mut files: Vec<PathBuf> = fs::read_dir(p.dir.join("src/yang"))
                    .ok()?
                    .flatten()
                    .map(|e| e.path())
                    .filter(|path| {
                        path.extension().is_some_and(|x| x == "yang")
                            && !path
                                .file_name()
                                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                            && path.is_file()
                    })
                    .collect();
                files.sort();
                (!files.is_empty()).then(|| crate::yang::PackageYang {
                    package: p.name.clone(),
                    files,
                })
            })
            .collect()
    }

    /// A hash of each package's YANG files (names and contents), to tell whether what a
    /// reload finds is what the schema was built from.
    pub fn yang_fingerprints(&self) -> BTreeMap<String, u64> {
        use std::hash::{Hash, Hasher};
        self.yang_sources()
            .into_iter()
            .map(|source| {
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                for file in &source.files {
                    file.hash(&mut hasher);
                    fs::read(file).ok().hash(&mut hasher);
                }
                (source.package, hasher.finish())
            })
            .collect()
    }

    /// Marks the packages whose YANG did not load (`failed`: package → libyang's message) as
    /// `file-load-error`, and the packages that require them as missing a dependency.
    pub fn mark_yang_failures(&mut self, failed: &BTreeMap<String, String>) {
        for p in &mut self.packages {
            if let Some(message) = failed.get(&p.name).filter(|_| p.status.is_up()) {
                p.status = OperStatus::FileLoadError;
                p.error_info = Some(format!("YANG: {message}"));
            }
        }
        let index = name_index(&self.packages);
        mark_missing(&mut self.packages, &index);
    }

    /// The package called `name` (the first one, should the name be duplicated).
    pub fn get(&self, name: &str) -> Option<&Package> {
        self.packages.iter().find(|p| p.name == name)
    }

    /// The Python VMs to run: one group per vm-name among the packages that are up and have
    /// Python settings, sorted by VM name. Groups without applications are included (they
    /// matter for paths and status); see [`VmGroup::has_applications`].
    pub fn vm_groups(&self) -> Vec<VmGroup<'_>> {
        let index = name_index(&self.packages);
        let order = dependency_order(&self.packages, &index, |p| p.status.is_up());
        let mut groups: BTreeMap<&str, VmGroup<'_>> = BTreeMap::new();
        for i in order {
            let package = &self.packages[i];
            let Some(python) = &package.python else {
                continue;
            };
            let group = groups
                .entry(python.vm_name.as_str())
                .or_insert_with(|| VmGroup {
                    vm_name: python.vm_name.clone(),
                    packages: Vec::new(),
                    sys_path: Vec::new(),
                    site_dirs: Vec::new(),
                });
            group.packages.push(package);
        }
        for group in groups.values_mut() {
            let mut seen = HashSet::new();
            for member in &group.packages {
                for dir in transitive_python_dirs(&self.packages, &index, member) {
                    if seen.insert(dir.clone()) {
                        group.sys_path.push(dir);
                    }
                }
            }
            let mut seen = HashSet::new();
            for member in &group.packages {
                for dir in &member.use_venv_site_dirs {
                    if seen.insert(dir.clone()) {
                        group.site_dirs.push(dir.clone());
                    }
                }
            }
        }
        groups.into_values().collect()
    }

    /// The operational `/ncs:packages` tree as XML (namespace [`NCS_NS`]), valid against
    /// `yang/tailf-ncs.yang`. Should a name occur twice (both copies are then broken), only the
    /// first is shown, since `name` is the list key.
    pub fn operational_xml(&self) -> String {
        let mut out = String::with_capacity(512 * (self.packages.len() + 1));
        let _ = write!(out, "<packages xmlns=\"{NCS_NS}\">");
        let mut seen = HashSet::new();
        for package in &self.packages {
            if seen.insert(package.name.as_str()) {
                write_package(&mut out, package);
            }
        }
        out.push_str("</packages>");
        out
    }
}

/// Reads one package directory. Never fails: problems become the package's status.
fn load_package(dir: &Path, dir_name: &str) -> Package {
    let file = dir.join(META_DATA_FILE);
    let broken = |name: Option<String>, reason: String| {
        Package::broken(
            name.unwrap_or_else(|| dir_name.to_string()),
            dir.to_path_buf(),
            OperStatus::PackageMetaDataError,
            format!("{}: {reason}", file.display()),
        )
    };
    let bytes = match fs::read(&file) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return broken(None, format!("{META_DATA_FILE} is missing"));
        }
        Err(e) => return broken(None, format!("cannot read: {e}")),
    };
    let meta = match read_meta_data(&bytes) {
        Ok(meta) => meta,
        Err((name, reason)) => return broken(name, reason),
    };

    let python_dir = Some(dir.join("python")).filter(|p| p.is_dir());
    let mut package = Package {
        name: meta.name,
        dir: dir.to_path_buf(),
        version: meta.version,
        description: meta.description,
        ncs_min_versions: meta.ncs_min_versions,
        ncs_max_versions: meta.ncs_max_versions,
        python: meta.python,
        requires: meta.requires,
        components: meta.components,
        streams: meta.streams,
        python_dir,
        use_venv_site_dirs: Vec::new(),
        status: OperStatus::Up,
        error_info: None,
    };
    if let Some(python_dir) = &package.python_dir {
        match venv_site_dirs(dir, python_dir) {
            Ok(dirs) => package.use_venv_site_dirs = dirs,
            Err(info) => {
                package.status = OperStatus::FileLoadError;
                package.error_info = Some(info);
            }
        }
    }
    package
}

/// The `site-packages` directories of the virtualenv named by `python/use_venv`, if the file
/// exists; an error text (naming the file) if it names nothing usable.
fn venv_site_dirs(package_dir: &Path, python_dir: &Path) -> Result<Vec<PathBuf>, String> {
    let file = python_dir.join("use_venv");
    let text = match fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: cannot read: {e}", file.display())),
    };
    let venv = text.trim();
    if venv.is_empty() {
        return Err(format!("{}: names no virtualenv", file.display()));
    }
    let venv = package_dir.join(venv);
    let lib = venv.join("lib");
    let entries = fs::read_dir(&lib).map_err(|e| {
        format!(
            "{}: virtualenv {} has no readable lib directory: {e}",
            file.display(),
            venv.display()
        )
    })?;
    // A venv normally has exactly one lib/python3.X; sort in case an upgrade left several.
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("python3"))
        .map(|e| e.path().join("site-packages"))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    if dirs.is_empty() {
        return Err(format!(
            "{}: virtualenv {} has no lib/python3*/site-packages",
            file.display(),
            venv.display()
        ));
    }
    Ok(dirs)
}

/// The parts of the metadata that a package keeps.
struct MetaData {
    name: String,
    version: Option<String>,
    description: Option<String>,
    ncs_min_versions: Vec<String>,
    ncs_max_versions: Vec<String>,
    python: Option<PythonPackage>,
    requires: Vec<Requirement>,
    components: Vec<Component>,
    streams: Vec<StreamSpec>,
}

/// Checks the text of a `package-meta-data.xml`: the package's name, or the reason it is not
/// usable metadata, in words.
pub fn check_meta_data(bytes: &[u8]) -> Result<String, String> {
    read_meta_data(bytes)
        .map(|meta| meta.name)
        .map_err(|(_, reason)| reason)
}

/// Reads the text of a `package-meta-data.xml`; the error is the package's name as far as it
/// could be read, and the reason.
fn read_meta_data(bytes: &[u8]) -> Result<MetaData, (Option<String>, String)> {
    let root = xml::parse(bytes).map_err(|e| (None, format!("not well-formed XML: {e}")))?;
    parse_meta_data(&root).map_err(|reason| (best_effort_name(&root), reason))
}

/// Interprets a parsed `package-meta-data.xml`; the error is the reason, in words.
fn parse_meta_data(root: &Element) -> Result<MetaData, String> {
    if root.name != "ncs-package" || root.ns != PACKAGES_NS {
        return Err(format!(
            "the root element must be <ncs-package xmlns=\"{PACKAGES_NS}\">, not <{}>{}",
            root.name,
            if root.ns.is_empty() {
                " without a namespace".to_string()
            } else {
                format!(" in namespace {}", root.ns)
            }
        ));
    }
    let mut name = None;
    let mut version = None;
    let mut description = None;
    let mut ncs_min_versions = Vec::new();
    let mut ncs_max_versions = Vec::new();
    let mut python_element: Option<(Option<String>, CallpointModel)> = None;
    let mut requires: Vec<Requirement> = Vec::new();
    let mut components: Vec<Component> = Vec::new();
    for child in own_children(root) {
        match child.name.as_str() {
            "name" => {
                let value = leaf(child)?;
                check_name("name", &value)?;
                set_once(&mut name, value, "name")?;
            }
            "package-version" => {
                let value = leaf(child)?;
                check_version("package-version", &value)?;
                set_once(&mut version, value, "package-version")?;
            }
            "description" => set_once(&mut description, leaf(child)?, "description")?,
            "ncs-min-version" => ncs_min_versions.push(leaf(child)?),
            "ncs-max-version" => ncs_max_versions.push(leaf(child)?),
            "python-package" => {
                set_once(&mut python_element, parse_python(child)?, "python-package")?
            }
            "required-package" => {
                let requirement = parse_requirement(child)?;
                if requires.iter().any(|r| r.name == requirement.name) {
                    return Err(format!(
                        "required-package '{}' is listed twice",
                        requirement.name
                    ));
                }
                requires.push(requirement);
            }
            "component" => {
                let component = parse_component(child)?;
                if components.iter().any(|c| c.name == component.name) {
                    return Err(format!("component '{}' is defined twice", component.name));
                }
                components.push(component);
            }
            other if IGNORED_TOP_LEVEL.contains(&other) => {}
            other => return Err(format!("unknown element <{other}> in <ncs-package>")),
        }
    }
    let name = name.ok_or("the mandatory <name> is missing")?;

    let has_python_component = components.iter().any(|c| {
        matches!(
            c.kind,
            ComponentKind::Application { .. } | ComponentKind::Upgrade { .. }
        )
    });
    let python = match python_element {
        Some((vm_name, CallpointModel::Multiprocessing)) => {
            if let Some(vm) = vm_name.filter(|vm| *vm != name) {
                tracing::warn!(
                    "package {name}: vm-name '{vm}' is ignored with callpoint-model \
                     multiprocessing; the package runs in VM '{name}'"
                );
            }
            Some(PythonPackage {
                vm_name: name.clone(),
                callpoint_model: CallpointModel::Multiprocessing,
            })
        }
        Some((vm_name, CallpointModel::Threading)) => Some(PythonPackage {
            vm_name: vm_name.unwrap_or_else(|| name.clone()),
            callpoint_model: CallpointModel::Threading,
        }),
        None if has_python_component => Some(PythonPackage {
            vm_name: name.clone(),
            callpoint_model: CallpointModel::Threading,
        }),
        None => None,
    };
    Ok(MetaData {
        name,
        version,
        description,
        ncs_min_versions,
        ncs_max_versions,
        python,
        requires,
        components,
        streams: streams::parse_streams(root)?,
    })
}

/// The package name, when a metadata file that fails later checks still gives a usable one, so
/// that the broken package is reported under the name its users know.
fn best_effort_name(root: &Element) -> Option<String> {
    if root.ns != PACKAGES_NS {
        return None;
    }
    let mut names = own_children(root).filter(|e| e.name == "name");
    let first = names.next()?;
    if names.next().is_some() {
        return None;
    }
    let name = leaf(first).ok()?;
    check_name("name", &name).ok()?;
    Some(name)
}

/// `python-package`: (vm-name, callpoint-model).
fn parse_python(element: &Element) -> Result<(Option<String>, CallpointModel), String> {
    let mut vm_name = None;
    let mut model = None;
    for child in own_children(element) {
        match child.name.as_str() {
            "vm-name" => {
                let value = leaf(child)?;
                check_name("python-package/vm-name", &value)?;
                set_once(&mut vm_name, value, "python-package/vm-name")?;
            }
            "callpoint-model" => {
                let value = match leaf(child)?.as_str() {
                    "threading" => CallpointModel::Threading,
                    "multiprocessing" => CallpointModel::Multiprocessing,
                    other => {
                        return Err(format!(
                            "python-package/callpoint-model '{other}' is neither threading nor \
                             multiprocessing"
                        ));
                    }
                };
                set_once(&mut model, value, "python-package/callpoint-model")?;
            }
            other => return Err(format!("unknown element <{other}> in <python-package>")),
        }
    }
    Ok((vm_name, model.unwrap_or_default()))
}

/// `required-package`.
fn parse_requirement(element: &Element) -> Result<Requirement, String> {
    let mut name = None;
    let mut min_version = None;
    let mut max_version = None;
    for child in own_children(element) {
        match child.name.as_str() {
            "name" => set_once(&mut name, leaf(child)?, "required-package/name")?,
            "min-version" => {
                let value = leaf(child)?;
                check_version("required-package/min-version", &value)?;
                set_once(&mut min_version, value, "required-package/min-version")?;
            }
            "max-version" => {
                let value = leaf(child)?;
                check_version("required-package/max-version", &value)?;
                set_once(&mut max_version, value, "required-package/max-version")?;
            }
            other => return Err(format!("unknown element <{other}> in <required-package>")),
        }
    }
    let name = name
        .filter(|n| !n.is_empty())
        .ok_or("a <required-package> has no <name>")?;
    if let (Some(min), Some(max)) = (&min_version, &max_version)
        && compare_versions(min, max) == Ordering::Greater
    {
        return Err(format!(
            "required-package '{name}': min-version {min} is above max-version {max}"
        ));
    }
    Ok(Requirement {
        name,
        min_version,
        max_version,
    })
}

/// `component`.
fn parse_component(element: &Element) -> Result<Component, String> {
    let mut name = None;
    let mut kinds = Vec::new();
    for child in own_children(element) {
        match child.name.as_str() {
            "name" => set_once(&mut name, leaf(child)?, "component/name")?,
            // Documentation and licensing; nothing to do with running the component.
            "description" | "entitlement-tag" => {}
            "application" | "upgrade" | "ned" | "callback" => kinds.push(child),
            other => return Err(format!("unknown element <{other}> in <component>")),
        }
    }
    let name = name
        .filter(|n| !n.is_empty())
        .ok_or("a <component> has no <name>")?;
    let err = |reason: String| format!("component '{name}': {reason}");
    let kind = match kinds.as_slice() {
        [] => {
            return Err(err(
                "has none of application, upgrade, ned, callback".to_string()
            ));
        }
        [kind] => *kind,
        [first, second, ..] => {
            return Err(err(format!(
                "has both <{}> and <{}>; a component is exactly one kind",
                first.name, second.name
            )));
        }
    };
    let kind = match kind.name.as_str() {
        "application" => {
            let mut class = None;
            let mut phase = None;
            for child in own_children(kind) {
                match child.name.as_str() {
                    "python-class-name" => set_once(
                        &mut class,
                        Some(leaf(child).map_err(&err)?),
                        "python-class-name or java-class-name",
                    )
                    .map_err(&err)?,
                    "java-class-name" => {
                        set_once(&mut class, None, "python-class-name or java-class-name")
                            .map_err(&err)?;
                    }
                    "start-phase" => {
                        let value = match leaf(child).map_err(&err)?.as_str() {
                            "phase1" => StartPhase::Phase1,
                            "phase2" => StartPhase::Phase2,
                            other => {
                                return Err(err(format!(
                                    "start-phase '{other}' is not supported (phase1 or phase2)"
                                )));
                            }
                        };
                        set_once(&mut phase, value, "start-phase").map_err(&err)?;
                    }
                    other => {
                        return Err(err(format!("unknown element <{other}> in <application>")));
                    }
                }
            }
            match class {
                None => {
                    return Err(err(
                        "<application> has neither python-class-name nor java-class-name"
                            .to_string(),
                    ));
                }
                Some(None) => ComponentKind::Other("application (java)".to_string()),
                Some(Some(class_name)) => ComponentKind::Application {
                    class_name,
                    start_phase: phase.unwrap_or_default(),
                },
            }
        }
        "upgrade" => {
            let mut class = None;
            for child in own_children(kind) {
                match child.name.as_str() {
                    "python-class-name" => set_once(
                        &mut class,
                        Some(leaf(child).map_err(&err)?),
                        "python-class-name or java-class-name",
                    )
                    .map_err(&err)?,
                    "java-class-name" => {
                        set_once(&mut class, None, "python-class-name or java-class-name")
                            .map_err(&err)?;
                    }
                    other => return Err(err(format!("unknown element <{other}> in <upgrade>"))),
                }
            }
            match class {
                None => {
                    return Err(err(
                        "<upgrade> has neither python-class-name nor java-class-name".to_string(),
                    ));
                }
                Some(None) => ComponentKind::Other("upgrade (java)".to_string()),
                Some(Some(class_name)) if class_name.is_empty() => {
                    return Err(err("<upgrade> has an empty python-class-name".to_string()));
                }
                Some(Some(class_name)) => ComponentKind::Upgrade { class_name },
            }
        }
        // ned and callback components are Java (or, for NETCONF NEDs, built into NSO); their
        // content is not ours to check.
        other => ComponentKind::Other(other.to_string()),
    };
    let source = streams::parse_source(element).map_err(&err)?;
    if source.is_some() && !matches!(kind, ComponentKind::Application { .. }) {
        return Err(err(
            "<notification-source> belongs to a Python application component".to_string(),
        ));
    }
    Ok(Component { name, kind, source })
}

/// The child elements in the metadata namespace; elements of other namespaces are extensions
/// that pyvmd does not interpret.
fn own_children(element: &Element) -> impl Iterator<Item = &Element> {
    element.elements().filter(|e| e.ns == PACKAGES_NS)
}

/// The trimmed text of a leaf element (NSO's own examples wrap class names over lines).
pub(super) fn leaf(element: &Element) -> Result<String, String> {
    if element.has_elements() {
        return Err(format!("<{}> must hold text, not elements", element.name));
    }
    Ok(element.text().trim().to_string())
}

/// Stores a singleton value, refusing a second one.
fn set_once<T>(slot: &mut Option<T>, value: T, what: &str) -> Result<(), String> {
    if slot.is_some() {
        return Err(format!("<{what}> is given more than once"));
    }
    *slot = Some(value);
    Ok(())
}

/// Package and VM names end up in file names (`<prefix>-<vm>.log`) and in paths; refuse what
/// would escape a directory or be unprintable.
fn check_name(what: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("<{what}> is empty"));
    }
    if value == "." || value == ".." || value.contains('/') || value.chars().any(char::is_control) {
        return Err(format!(
            "<{what}> '{}' is not usable as a name (no '/', control characters, '.' or '..')",
            value.escape_debug()
        ));
    }
    Ok(())
}

fn check_version(what: &str, value: &str) -> Result<(), String> {
    if is_valid_version(value) {
        Ok(())
    } else {
        Err(format!(
            "<{what}> '{}' does not match the version pattern \
             \\d+\\.\\d+([-.](\\d+|\\w+))*",
            value.escape_debug()
        ))
    }
}

/// True if `version` matches the package-version pattern `\d+\.\d+([-.](\d+|\w+))*`.
///
/// `\d` and `\w` are taken as ASCII (`[0-9]`, `[A-Za-z0-9_]`), as libyang's PCRE2 compiles
/// them; a version accepted here therefore always validates in the operational tree.
pub fn is_valid_version(version: &str) -> bool {
    fn digits(s: &str) -> usize {
        s.bytes().take_while(u8::is_ascii_digit).count()
    }
    let major = digits(version);
    if major == 0 {
        return false;
    }
    let Some(rest) = version[major..].strip_prefix('.') else {
        return false;
    };
    let minor = digits(rest);
    if minor == 0 {
        return false;
    }
    let mut rest = &rest[minor..];
    while !rest.is_empty() {
        let Some(part) = rest.strip_prefix(['.', '-']) else {
            return false;
        };
        let len = part
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        if len == 0 {
            return false;
        }
        rest = &part[len..];
    }
    true
}

/// Compares package versions part by part (parts are separated by `.` or `-`): two numeric
/// parts compare as numbers (of any length), anything else compares as strings; when one
/// version is a prefix of the other, the shorter one is lower (`1.0` < `1.0.1`).
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let mut left = a.split(['.', '-']);
    let mut right = b.split(['.', '-']);
    loop {
        match (left.next(), right.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let order = compare_part(x, y);
                if order != Ordering::Equal {
                    return order;
                }
            }
        }
    }
}

fn compare_part(x: &str, y: &str) -> Ordering {
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if numeric(x) && numeric(y) {
        // Compare digit strings without parsing, so no part is too long for an integer.
        let (x, y) = (x.trim_start_matches('0'), y.trim_start_matches('0'));
        x.len().cmp(&y.len()).then_with(|| x.cmp(y))
    } else {
        x.cmp(y)
    }
}

/// Package name → index of its first occurrence.
fn name_index(packages: &[Package]) -> HashMap<String, usize> {
    let mut index = HashMap::new();
    for (i, p) in packages.iter().enumerate() {
        index.entry(p.name.clone()).or_insert(i);
    }
    index
}

/// Two packages with one name: neither is used, since which one was meant is unknowable.
fn mark_duplicates(packages: &mut [Package]) {
    let mut dirs: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for p in packages.iter() {
        dirs.entry(p.name.clone()).or_default().push(p.dir.clone());
    }
    for p in packages.iter_mut() {
        let Some(all) = dirs.get(&p.name).filter(|d| d.len() > 1) else {
            continue;
        };
        let listed: Vec<String> = all.iter().map(|d| d.display().to_string()).collect();
        let info = format!(
            "{}: duplicate package name '{}' (found in {})",
            p.meta_data_file().display(),
            p.name,
            listed.join(", ")
        );
        p.status = OperStatus::PackageMetaDataError;
        p.error_info = Some(info);
    }
}

/// Marks every up package that is part of a requirement cycle (Tarjan's strongly connected
/// components over the up packages; a component of two or more, or a self-requirement).
fn mark_cycles(packages: &mut [Package], index: &HashMap<String, usize>) {
    let n = packages.len();
    let edges: Vec<Vec<usize>> = packages
        .iter()
        .map(|p| {
            if !p.status.is_up() {
                return Vec::new();
            }
            p.requires
                .iter()
                .filter_map(|r| index.get(&r.name).copied())
                .filter(|&t| packages[t].status.is_up())
                .collect()
        })
        .collect();

    // Iterative Tarjan, so that a long requirement chain cannot overflow the stack.
    let mut order = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut next = 0;
    let mut cyclic: Vec<Vec<usize>> = Vec::new();
    for root in 0..n {
        if order[root] != usize::MAX || !packages[root].status.is_up() {
            continue;
        }
        let mut work = vec![(root, 0usize)];
        order[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut edge)) = work.last_mut() {
            if let Some(&w) = edges[v].get(*edge) {
                *edge += 1;
                if order[w] == usize::MAX {
                    order[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(order[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == order[v] {
                let mut members = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    members.push(w);
                    if w == v {
                        break;
                    }
                }
                if members.len() > 1 || edges[v].contains(&v) {
                    cyclic.push(members);
                }
            }
        }
    }
    for members in cyclic {
        let mut names: Vec<&str> = members.iter().map(|&i| packages[i].name.as_str()).collect();
        names.sort_unstable();
        let info = if names.len() == 1 {
            format!("package '{}' requires itself", names[0])
        } else {
            format!(
                "circular dependency: packages {} require each other",
                names.join(", ")
            )
        };
        for i in members {
            packages[i].status = OperStatus::CircularDependency;
            packages[i].error_info = Some(info.clone());
        }
    }
}

/// Marks the up packages whose requirements are not met, dependencies first so that a package
/// depending on a failed one fails too (naming it).
fn mark_missing(packages: &mut [Package], index: &HashMap<String, usize>) {
    let order = dependency_order(packages, index, |p| p.status.is_up());
    for i in order {
        let mut failure = None;
        for req in &packages[i].requires {
            let target = index.get(&req.name).map(|&t| &packages[t]);
            let reason = match target {
                None => format!("required package '{}' is not present", req.name),
                Some(t) if !t.status.is_up() => format!(
                    "required package '{}' is not up ({})",
                    req.name,
                    t.status.as_str()
                ),
                Some(t) if !req.accepts(t.version.as_deref()) => match &t.version {
                    Some(v) => format!(
                        "required package '{}' has version {v}, outside the required {}",
                        req.name,
                        req.bounds()
                    ),
                    None => format!(
                        "required package '{}' declares no package-version; required: {}",
                        req.name,
                        req.bounds()
                    ),
                },
                Some(_) => continue,
            };
            failure = Some((req.name.clone(), req.wanted_version(), reason));
            break;
        }
        if let Some((package, version, reason)) = failure {
            packages[i].status = OperStatus::MissingDependency { package, version };
            packages[i].error_info = Some(reason);
        }
    }
}

/// The indexes of the packages selected by `include`, each after the selected packages it
/// requires (depth-first post-order; roots in name order, requirements in file order). Edges
/// closing a cycle are ignored: cycles are resolved before this is used.
fn dependency_order(
    packages: &[Package],
    index: &HashMap<String, usize>,
    include: impl Fn(&Package) -> bool,
) -> Vec<usize> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    let mut mark = vec![Mark::New; packages.len()];
    let mut order = Vec::with_capacity(packages.len());
    for root in 0..packages.len() {
        if mark[root] != Mark::New || !include(&packages[root]) {
            continue;
        }
        mark[root] = Mark::Open;
        let mut work = vec![(root, 0usize)];
        while let Some(&mut (v, ref mut next)) = work.last_mut() {
            if let Some(req) = packages[v].requires.get(*next) {
                *next += 1;
                if let Some(&t) = index.get(&req.name)
                    && mark[t] == Mark::New
                    && include(&packages[t])
                {
                    mark[t] = Mark::Open;
                    work.push((t, 0));
                }
                continue;
            }
            mark[v] = Mark::Done;
            order.push(v);
            work.pop();
        }
    }
    order
}

/// `member`'s python/ directory, then those of the packages it requires, transitively
/// (depth-first, in file order), each once.
fn transitive_python_dirs(
    packages: &[Package],
    index: &HashMap<String, usize>,
    member: &Package,
) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let mut visited = HashSet::new();
    let mut work = vec![member];
    visited.insert(member.name.as_str());
    while let Some(p) = work.pop() {
        if let Some(dir) = &p.python_dir {
            dirs.push(dir.clone());
        }
        // Reverse, so that the first requirement is visited first.
        for req in p.requires.iter().rev() {
            if let Some(&t) = index.get(&req.name)
                && visited.insert(packages[t].name.as_str())
            {
                work.push(&packages[t]);
            }
        }
    }
    dirs
}

/// Appends one `<package>` entry, in the order of `tailf-ncs.yang`.
fn write_package(out: &mut String, p: &Package) {
    out.push_str("<package>");
    text_leaf(out, "name", &p.name);
    if let Some(version) = &p.version {
        text_leaf(out, "package-version", version);
    }
    if let Some(description) = &p.description {
        text_leaf(out, "description", description);
    }
    text_leaf(out, "directory", &p.dir.to_string_lossy());
    for v in &p.ncs_min_versions {
        text_leaf(out, "ncs-min-version", v);
    }
    for v in &p.ncs_max_versions {
        text_leaf(out, "ncs-max-version", v);
    }
    if let Some(python) = &p.python {
        out.push_str("<python-package>");
        text_leaf(out, "vm-name", &python.vm_name);
        text_leaf(out, "callpoint-model", python.callpoint_model.as_str());
        out.push_str("</python-package>");
    }
    for req in &p.requires {
        out.push_str("<required-package>");
        text_leaf(out, "name", &req.name);
        if let Some(min) = &req.min_version {
            text_leaf(out, "min-version", min);
        }
        if let Some(max) = &req.max_version {
            text_leaf(out, "max-version", max);
        }
        out.push_str("</required-package>");
    }
    for component in &p.components {
        out.push_str("<component>");
        text_leaf(out, "name", &component.name);
        match &component.kind {
            ComponentKind::Application {
                class_name,
                start_phase,
            } => {
                out.push_str("<application>");
                text_leaf(out, "python-class-name", class_name);
                text_leaf(out, "start-phase", start_phase.as_str());
                out.push_str("</application>");
            }
            ComponentKind::Upgrade { class_name } => {
                out.push_str("<upgrade>");
                text_leaf(out, "python-class-name", class_name);
                out.push_str("</upgrade>");
            }
            // The model has no case for kinds pyvmd does not run; the name alone is listed.
            ComponentKind::Other(_) => {}
        }
        out.push_str("</component>");
    }
    out.push_str("<oper-status>");
    match &p.status {
        OperStatus::MissingDependency { package, version } => {
            out.push_str("<missing-dependency>");
            text_leaf(out, "package-name", package);
            if let Some(version) = version {
                text_leaf(out, "package-version", version);
            }
            out.push_str("</missing-dependency>");
        }
        other => {
            let _ = write!(out, "<{}/>", other.as_str());
        }
    }
    if let Some(info) = p.error_info.as_deref().filter(|_| !p.status.is_up()) {
        text_leaf(out, "error-info", info);
    }
    out.push_str("</oper-status>");
    out.push_str("</package>");
}

/// `<name>value</name>`, escaped; characters XML 1.0 cannot carry (control characters from a
/// directory name, say) become U+FFFD so the document stays well-formed.
fn text_leaf(out: &mut String, name: &str, value: &str) {
    let valid = |c: char| {
        matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}')
            || c >= '\u{10000}'
    };
    let cleaned: std::borrow::Cow<'_, str> = if value.chars().all(valid) {
        value.into()
    } else {
        value
            .chars()
            .map(|c| if valid(c) { c } else { '\u{FFFD}' })
            .collect::<String>()
            .into()
    };
    let _ = write!(
        out,
        "<{name}>{}</{name}>",
        quick_xml::escape::escape(cleaned)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `<root>/<dir>/package-meta-data.xml` and creates `python/` unless `python` is
    /// false; returns the package directory.
    fn write_package_dir(root: &Path, dir: &str, meta: &str, python: bool) -> PathBuf {
        let pkg = root.join(dir);
        fs::create_dir_all(&pkg).unwrap();
        fs::write(pkg.join(META_DATA_FILE), meta).unwrap();
        if python {
            fs::create_dir_all(pkg.join("python")).unwrap();
        }
        pkg
    }

    /// A metadata document with `name`, version 1.0 and `body`.
    fn meta(name: &str, body: &str) -> String {
        format!(
            "<ncs-package xmlns=\"{PACKAGES_NS}\"><name>{name}</name>\
             <package-version>1.0</package-version>{body}</ncs-package>"
        )
    }

    fn app(component: &str, class: &str) -> String {
        format!(
            "<component><name>{component}</name><application>\
             <python-class-name>{class}</python-class-name></application></component>"
        )
    }

    fn requires(name: &str) -> String {
        format!("<required-package><name>{name}</name></required-package>")
    }

    fn status_of<'a>(set: &'a PackageSet, name: &str) -> &'a OperStatus {
        &set.get(name)
            .unwrap_or_else(|| panic!("no package {name} in {set:#?}"))
            .status
    }

    fn absolute(p: &Path) -> PathBuf {
        std::path::absolute(p).unwrap()
    }

    #[test]
    fn versions_compare_part_by_part() {
        use Ordering::*;
        let cases = [
            ("1.0", "1.0", Equal),
            ("1.2", "1.10", Less),
            ("2.0", "10.0", Less),
            ("1.0", "1.0.1", Less),
            ("1.0.1", "1.0", Greater),
            ("1.0-beta", "1.0-alpha", Greater),
            ("1.0-rc1", "1.0-rc2", Less),
            ("1.01", "1.1", Equal),
            ("1.0-1", "1.0.1", Equal),
            (
                "1.99999999999999999999999",
                "1.100000000000000000000000",
                Less,
            ),
            // A numeric part against a word compares as strings: digits sort first.
            ("1.0.5", "1.0.beta", Less),
        ];
        for (a, b, want) in cases {
            assert_eq!(compare_versions(a, b), want, "{a} vs {b}");
            assert_eq!(compare_versions(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn version_pattern() {
        for good in [
            "1.0",
            "10.22",
            "1.0.3",
            "1.0-beta",
            "6.1.2-rc_1",
            "1.0.a.b-7",
        ] {
            assert!(is_valid_version(good), "{good}");
        }
        for bad in [
            "", "1", "1.", ".1", "v1.0", "1.0-", "1.0..1", "1.0 ", "1.0+x", "a.b", "1,0",
        ] {
            assert!(!is_valid_version(bad), "{bad}");
        }
    }

    #[test]
    fn requirement_bounds() {
        let req = |min: Option<&str>, max: Option<&str>| Requirement {
            name: "x".into(),
            min_version: min.map(Into::into),
            max_version: max.map(Into::into),
        };
        assert!(req(None, None).accepts(None));
        assert!(req(Some("1.0"), None).accepts(Some("1.0")));
        assert!(req(Some("1.0"), None).accepts(Some("1.2.3")));
        assert!(!req(Some("1.0"), None).accepts(Some("0.9")));
        assert!(!req(Some("1.0"), None).accepts(None));
        assert!(req(Some("1.0"), Some("2.0")).accepts(Some("2.0")));
        assert!(!req(Some("1.0"), Some("2.0")).accepts(Some("2.0.1")));
        assert!(!req(None, Some("2.0")).accepts(Some("3.0")));
    }

    #[test]
    fn missing_packages_dir_is_an_empty_set() {
        let tmp = tempfile::tempdir().unwrap();
        let set = discover(&tmp.path().join("nope"));
        assert!(set.packages.is_empty());
        assert!(set.vm_groups().is_empty());
    }

    #[test]
    fn good_package_with_two_components() {
        let tmp = tempfile::tempdir().unwrap();
        let body = "<description>Two things</description>\
             <ncs-min-version>6.0</ncs-min-version>\
             <python-package><vm-name>vm1</vm-name>\
               <callpoint-model>multiprocessing</callpoint-model></python-package>\
             <templates>t</templates>\
             <component><name>main</name><description>d</description><application>\
               <python-class-name>\n   good.main.Main\n </python-class-name>\
               <start-phase>phase2</start-phase></application></component>\
             <component><name>early</name><application>\
               <python-class-name>good.early.Early</python-class-name>\
               <start-phase>phase1</start-phase></application></component>\
             <component><name>up</name><upgrade>\
               <python-class-name>good.upgrade.Up</python-class-name></upgrade></component>\
             <component><name>cb</name><callback>\
               <java-class-name>com.example.Cb</java-class-name></callback></component>\
             <other xmlns=\"urn:example:extension\"><anything/></other>";
        let dir = write_package_dir(tmp.path(), "good-dir", &meta("good", body), true);
        // A plain file and a hidden directory are not packages.
        fs::write(tmp.path().join("README"), "not a package").unwrap();
        fs::create_dir(tmp.path().join(".git")).unwrap();

        let set = discover(tmp.path());
        assert_eq!(set.packages.len(), 1, "{set:#?}");
        let p = &set.packages[0];
        assert_eq!(p.status, OperStatus::Up, "{:?}", p.error_info);
        assert_eq!(p.name, "good");
        assert_eq!(p.dir, absolute(&dir));
        assert_eq!(p.version.as_deref(), Some("1.0"));
        assert_eq!(p.description.as_deref(), Some("Two things"));
        assert_eq!(p.ncs_min_versions, ["6.0"]);
        // vm-name does not apply with multiprocessing: the package gets its own VM.
        assert_eq!(
            p.python,
            Some(PythonPackage {
                vm_name: "good".into(),
                callpoint_model: CallpointModel::Multiprocessing
            })
        );
        assert_eq!(p.python_dir, Some(absolute(&dir.join("python"))));
        assert_eq!(p.components.len(), 4);
        assert_eq!(
            p.components[0].kind,
            ComponentKind::Application {
                class_name: "good.main.Main".into(),
                start_phase: StartPhase::Phase2
            }
        );
        assert_eq!(
            p.components[2].kind,
            ComponentKind::Upgrade {
                class_name: "good.upgrade.Up".into()
            }
        );
        assert_eq!(
            p.components[3].kind,
            ComponentKind::Other("callback".into())
        );
        let apps: Vec<&str> = p.applications().iter().map(|c| c.name.as_str()).collect();
        assert_eq!(apps, ["early", "main"], "phase1 starts first");
        assert!(!p.is_library());

        let groups = set.vm_groups();
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].vm_name, "good");
        assert!(groups[0].has_applications());
        assert_eq!(groups[0].callpoint_model(), CallpointModel::Multiprocessing);
    }

    #[test]
    fn python_package_is_implied_by_a_python_component() {
        let tmp = tempfile::tempdir().unwrap();
        write_package_dir(
            tmp.path(),
            "p",
            &meta("p", &app("main", "p.main.Main")),
            true,
        );
        write_package_dir(tmp.path(), "yang-only", &meta("yang-only", ""), false);
        let set = discover(tmp.path());
        let p = set.get("p").unwrap();
        assert_eq!(
            p.python,
            Some(PythonPackage {
                vm_name: "p".into(),
                callpoint_model: CallpointModel::Threading
            })
        );
        assert_eq!(set.get("yang-only").unwrap().python, None);
        assert_eq!(status_of(&set, "yang-only"), &OperStatus::Up);
        let names: Vec<String> = set.vm_groups().into_iter().map(|g| g.vm_name).collect();
        assert_eq!(names, ["p"]);
    }

    #[test]
    fn library_package_is_on_the_path_of_its_users() {
        let tmp = tempfile::tempdir().unwrap();
        let lib = write_package_dir(tmp.path(), "lib", &meta("lib", &app("lib", "")), true);
        let user = write_package_dir(
            tmp.path(),
            "user",
            &meta("user", &(requires("lib") + &app("main", "user.main.Main"))),
            true,
        );
        let set = discover(tmp.path());
        let library = set.get("lib").unwrap();
        assert_eq!(library.status, OperStatus::Up);
        assert!(library.is_library());
        assert!(library.applications().is_empty());

        let groups = set.vm_groups();
        let lib_group = groups.iter().find(|g| g.vm_name == "lib").unwrap();
        assert!(!lib_group.has_applications(), "a library VM runs nothing");
        let user_group = groups.iter().find(|g| g.vm_name == "user").unwrap();
        assert!(user_group.has_applications());
        assert_eq!(
            user_group.sys_path,
            [
                absolute(&user.join("python")),
                absolute(&lib.join("python"))
            ]
        );
    }

    #[test]
    fn packages_with_one_vm_name_share_a_vm() {
        let tmp = tempfile::tempdir().unwrap();
        let shared = |name: &str, extra: &str| {
            meta(
                name,
                &format!(
                    "<python-package><vm-name>shared</vm-name></python-package>{extra}{}",
                    app("main", &format!("{name}.main.Main"))
                ),
            )
        };
        // b requires a, so a comes first although the names sort the other way round.
        let a = write_package_dir(tmp.path(), "za", &shared("za", ""), true);
        let b = write_package_dir(tmp.path(), "b", &shared("b", &requires("za")), true);
        let c = write_package_dir(
            tmp.path(),
            "c",
            &meta("c", &app("main", "c.main.Main")),
            true,
        );
        let set = discover(tmp.path());
        let groups = set.vm_groups();
        let summary: Vec<(&str, Vec<&str>)> = groups
            .iter()
            .map(|g| (g.vm_name.as_str(), g.package_names()))
            .collect();
        assert_eq!(summary, [("c", vec!["c"]), ("shared", vec!["za", "b"])]);
        assert_eq!(groups[0].sys_path, [absolute(&c.join("python"))]);
        assert_eq!(
            groups[1].sys_path,
            [absolute(&a.join("python")), absolute(&b.join("python"))],
            "deduplicated: za's dir is not repeated after b's"
        );
    }

    #[test]
    fn sys_path_is_transitive_in_requirement_order() {
        let tmp = tempfile::tempdir().unwrap();
        // top -> mid1 -> base, top -> mid2 -> base; noPy has no python/ dir.
        let top = write_package_dir(
            tmp.path(),
            "top",
            &meta(
                "top",
                &(requires("mid1") + &requires("mid2") + &app("main", "top.main.Main")),
            ),
            true,
        );
        let mid1 = write_package_dir(
            tmp.path(),
            "mid1",
            &meta("mid1", &(requires("base") + &requires("nopy"))),
            true,
        );
        let mid2 = write_package_dir(tmp.path(), "mid2", &meta("mid2", &requires("base")), true);
        let base = write_package_dir(tmp.path(), "base", &meta("base", ""), true);
        write_package_dir(tmp.path(), "nopy", &meta("nopy", ""), false);
        let set = discover(tmp.path());
        let groups = set.vm_groups();
        assert_eq!(groups.len(), 1, "only top has Python: {groups:#?}");
        let py = |d: &Path| absolute(&d.join("python"));
        assert_eq!(
            groups[0].sys_path,
            [py(&top), py(&mid1), py(&base), py(&mid2)]
        );
    }

    #[test]
    fn use_venv_adds_site_packages() {
        let tmp = tempfile::tempdir().unwrap();
        let pkg = write_package_dir(
            tmp.path(),
            "v",
            &meta("v", &app("main", "v.main.Main")),
            true,
        );
        let site = pkg.join("venv/lib/python3.11/site-packages");
        fs::create_dir_all(&site).unwrap();
        // A relative path, resolved against the package directory, with a trailing newline.
        fs::write(pkg.join("python/use_venv"), "venv\n").unwrap();

        let abs = tmp.path().join("elsewhere");
        let abs_site = abs.join("lib/python3.12/site-packages");
        fs::create_dir_all(&abs_site).unwrap();
        let w = write_package_dir(
            tmp.path(),
            "w",
            &meta("w", &app("main", "w.main.Main")),
            true,
        );
        fs::write(w.join("python/use_venv"), abs.to_str().unwrap()).unwrap();

        let broken = write_package_dir(
            tmp.path(),
            "x",
            &meta("x", &app("main", "x.main.Main")),
            true,
        );
        fs::write(broken.join("python/use_venv"), "no-such-venv").unwrap();

        let set = discover(tmp.path());
        let v = set.get("v").unwrap();
        assert_eq!(v.status, OperStatus::Up, "{:?}", v.error_info);
        assert_eq!(v.use_venv_site_dirs, [absolute(&site)]);
        assert_eq!(
            set.get("w").unwrap().use_venv_site_dirs,
            [absolute(&abs_site)]
        );
        let x = set.get("x").unwrap();
        assert_eq!(x.status, OperStatus::FileLoadError);
        assert!(
            x.error_info.as_deref().unwrap().contains("no-such-venv"),
            "{x:?}"
        );

        let groups = set.vm_groups();
        let v_group = groups.iter().find(|g| g.vm_name == "v").unwrap();
        assert_eq!(v_group.site_dirs, [absolute(&site)]);
        assert!(groups.iter().all(|g| g.vm_name != "x"), "x is not up");
    }

    #[test]
    fn missing_dependency() {
        let tmp = tempfile::tempdir().unwrap();
        write_package_dir(
            tmp.path(),
            "a",
            &meta(
                "a",
                "<required-package><name>ghost</name><min-version>2.1</min-version>\
                 </required-package>",
            ),
            false,
        );
        write_package_dir(tmp.path(), "b", &meta("b", &requires("a")), false);
        write_package_dir(tmp.path(), "c", &meta("c", &requires("b")), false);
        let set = discover(tmp.path());
        assert_eq!(
            status_of(&set, "a"),
            &OperStatus::MissingDependency {
                package: "ghost".into(),
                version: Some("2.1".into())
            }
        );
        // Dependents of a package that is not up are not up either, naming their requirement.
        assert_eq!(
            status_of(&set, "b"),
            &OperStatus::MissingDependency {
                package: "a".into(),
                version: None
            }
        );
        assert_eq!(
            status_of(&set, "c"),
            &OperStatus::MissingDependency {
                package: "b".into(),
                version: None
            }
        );
        let info = set.get("a").unwrap().error_info.clone().unwrap();
        assert!(info.contains("ghost"), "{info}");
    }

    #[test]
    fn dependency_on_a_broken_package() {
        let tmp = tempfile::tempdir().unwrap();
        write_package_dir(tmp.path(), "broken", "<ncs-package", false);
        write_package_dir(
            tmp.path(),
            "user",
            &meta("user", &requires("broken")),
            false,
        );
        let set = discover(tmp.path());
        assert_eq!(status_of(&set, "broken"), &OperStatus::PackageMetaDataError);
        assert_eq!(
            status_of(&set, "user"),
            &OperStatus::MissingDependency {
                package: "broken".into(),
                version: None
            }
        );
        let info = set.get("user").unwrap().error_info.clone().unwrap();
        assert!(info.contains("package-meta-data-error"), "{info}");
    }

    #[test]
    fn version_outside_the_required_range() {
        let tmp = tempfile::tempdir().unwrap();
        let versioned = |name: &str, version: &str| {
            format!(
                "<ncs-package xmlns=\"{PACKAGES_NS}\"><name>{name}</name>\
                 <package-version>{version}</package-version></ncs-package>"
            )
        };
        write_package_dir(tmp.path(), "lib", &versioned("lib", "1.10.2"), false);
        let req = |name: &str, min: &str, max: &str| {
            let mut bounds = String::new();
            if !min.is_empty() {
                bounds += &format!("<min-version>{min}</min-version>");
            }
            if !max.is_empty() {
                bounds += &format!("<max-version>{max}</max-version>");
            }
            meta(
                name,
                &format!("<required-package><name>lib</name>{bounds}</required-package>"),
            )
        };
        write_package_dir(tmp.path(), "ok", &req("ok", "1.9", "1.10.2"), false);
        write_package_dir(tmp.path(), "too-new", &req("too-new", "1.2", "1.10"), false);
        write_package_dir(tmp.path(), "too-old", &req("too-old", "1.11", ""), false);
        let set = discover(tmp.path());
        assert_eq!(status_of(&set, "ok"), &OperStatus::Up);
        assert_eq!(
            status_of(&set, "too-new"),
            &OperStatus::MissingDependency {
                package: "lib".into(),
                version: Some("1.2".into())
            }
        );
        assert_eq!(
            status_of(&set, "too-old"),
            &OperStatus::MissingDependency {
                package: "lib".into(),
                version: Some("1.11".into())
            }
        );
        let info = set.get("too-new").unwrap().error_info.clone().unwrap();
        assert!(
            info.contains("1.10.2") && info.contains("max-version 1.10"),
            "{info}"
        );
    }

    #[test]
    fn circular_dependency_of_two_and_three() {
        let tmp = tempfile::tempdir().unwrap();
        write_package_dir(tmp.path(), "a", &meta("a", &requires("b")), false);
        write_package_dir(tmp.path(), "b", &meta("b", &requires("a")), false);
        write_package_dir(tmp.path(), "x", &meta("x", &requires("y")), false);
        write_package_dir(tmp.path(), "y", &meta("y", &requires("z")), false);
        write_package_dir(tmp.path(), "z", &meta("z", &requires("x")), false);
        write_package_dir(tmp.path(), "self", &meta("self", &requires("self")), false);
        // Depends on the cycle without being part of it.
        write_package_dir(tmp.path(), "user", &meta("user", &requires("x")), false);
        write_package_dir(tmp.path(), "fine", &meta("fine", ""), false);
        let set = discover(tmp.path());
        for name in ["a", "b", "x", "y", "z", "self"] {
            assert_eq!(
                status_of(&set, name),
                &OperStatus::CircularDependency,
                "{name}"
            );
        }
        let info = set.get("y").unwrap().error_info.clone().unwrap();
        assert!(info.contains("x, y, z"), "{info}");
        assert_eq!(
            status_of(&set, "user"),
            &OperStatus::MissingDependency {
                package: "x".into(),
                version: None
            }
        );
        assert_eq!(status_of(&set, "fine"), &OperStatus::Up);
    }

    #[test]
    fn bad_xml_does_not_stop_the_others() {
        let tmp = tempfile::tempdir().unwrap();
        let bad = write_package_dir(tmp.path(), "bad", "<ncs-package><name>x</nam>", false);
        write_package_dir(tmp.path(), "good", &meta("good", ""), false);
        let set = discover(tmp.path());
        assert_eq!(set.packages.len(), 2);
        assert_eq!(status_of(&set, "good"), &OperStatus::Up);
        let p = set.get("bad").expect("named after its directory");
        assert_eq!(p.status, OperStatus::PackageMetaDataError);
        let info = p.error_info.as_deref().unwrap();
        assert!(
            info.contains(&bad.join(META_DATA_FILE).display().to_string()),
            "{info}"
        );
        assert!(info.contains("not well-formed"), "{info}");
    }

    #[test]
    fn missing_name_uses_the_directory_name() {
        let tmp = tempfile::tempdir().unwrap();
        write_package_dir(
            tmp.path(),
            "nameless",
            &format!(
                "<ncs-package xmlns=\"{PACKAGES_NS}\"><package-version>1.0</package-version>\
                 </ncs-package>"
            ),
            false,
        );
        let set = discover(tmp.path());
        let p = set.get("nameless").unwrap();
        assert_eq!(p.status, OperStatus::PackageMetaDataError);
        assert!(p.error_info.as_deref().unwrap().contains("<name>"), "{p:?}");
    }

    #[test]
    fn invalid_metadata_is_reported_under_its_name() {
        let cases = [
            (
                meta("p", "<required-packages><name>q</name></required-packages>"),
                "unknown element <required-packages>",
            ),
            (
                meta("p", "").replace("1.0", "one"),
                "does not match the version pattern",
            ),
            (
                meta(
                    "p",
                    "<python-package><callpoint-model>x</callpoint-model></python-package>",
                ),
                "callpoint-model 'x'",
            ),
            (
                meta(
                    "p",
                    "<component><name>c</name><application><python-class-name>a.B\
                     </python-class-name></application><upgrade><python-class-name>a.U\
                     </python-class-name></upgrade></component>",
                ),
                "component 'c': has both <application> and <upgrade>",
            ),
            (
                meta("p", &(app("c", "a.B") + &app("c", "a.C"))),
                "component 'c' is defined twice",
            ),
            (
                meta("p", "<component><name>c</name></component>"),
                "component 'c': has none of",
            ),
            (
                meta(
                    "p",
                    "<component><name>c</name><application><python-class-name>a.B\
                     </python-class-name><start-phase>phase0</start-phase></application>\
                     </component>",
                ),
                "start-phase 'phase0'",
            ),
            (
                meta(
                    "p",
                    "<required-package><name>q</name><min-version>2.0</min-version>\
                     <max-version>1.0</max-version></required-package>",
                ),
                "min-version 2.0 is above max-version 1.0",
            ),
            (
                meta(
                    "p",
                    "<python-package><vm-name>../x</vm-name></python-package>",
                ),
                "not usable as a name",
            ),
            (
                meta("p", "<name>q</name>"),
                "<name> is given more than once",
            ),
        ];
        for (xml, reason) in cases {
            let tmp = tempfile::tempdir().unwrap();
            write_package_dir(tmp.path(), "dir", &xml, false);
            let set = discover(tmp.path());
            let p = &set.packages[0];
            assert_eq!(p.status, OperStatus::PackageMetaDataError, "{xml}");
            let info = p.error_info.as_deref().unwrap();
            assert!(info.contains(reason), "{xml}: {info}");
            // The name is kept when it can be read unambiguously.
            let want = if reason.contains("more than once") {
                "dir"
            } else {
                "p"
            };
            assert_eq!(p.name, want, "{xml}");
        }
    }

    #[test]
    fn wrong_namespace_and_missing_metadata() {
        let tmp = tempfile::tempdir().unwrap();
        write_package_dir(
            tmp.path(),
            "nons",
            "<ncs-package><name>n</name></ncs-package>",
            false,
        );
        fs::create_dir(tmp.path().join("empty")).unwrap();
        let set = discover(tmp.path());
        let nons = set.get("nons").unwrap();
        assert_eq!(nons.status, OperStatus::PackageMetaDataError);
        assert!(
            nons.error_info
                .as_deref()
                .unwrap()
                .contains("without a namespace")
        );
        let empty = set.get("empty").unwrap();
        assert_eq!(empty.status, OperStatus::PackageMetaDataError);
        assert!(empty.error_info.as_deref().unwrap().contains("is missing"));
    }

    #[test]
    fn duplicate_names_disable_both() {
        let tmp = tempfile::tempdir().unwrap();
        write_package_dir(tmp.path(), "one", &meta("same", ""), false);
        write_package_dir(tmp.path(), "two", &meta("same", ""), false);
        write_package_dir(tmp.path(), "user", &meta("user", &requires("same")), false);
        let set = discover(tmp.path());
        let same: Vec<&Package> = set.packages.iter().filter(|p| p.name == "same").collect();
        assert_eq!(same.len(), 2);
        for p in same {
            assert_eq!(p.status, OperStatus::PackageMetaDataError);
            assert!(
                p.error_info
                    .as_deref()
                    .unwrap()
                    .contains("duplicate package name")
            );
        }
        assert!(matches!(
            status_of(&set, "user"),
            OperStatus::MissingDependency { package, .. } if package == "same"
        ));
        // The list key stays unique in the operational tree.
        assert_eq!(
            set.operational_xml()
                .matches("<package><name>same</name>")
                .count(),
            1
        );
    }

    #[test]
    fn directory_names_may_contain_spaces() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = write_package_dir(
            tmp.path(),
            "my package dir",
            &meta("spaced", &app("main", "spaced.main.Main")),
            true,
        );
        let set = discover(tmp.path());
        let p = set.get("spaced").unwrap();
        assert_eq!(p.status, OperStatus::Up);
        assert_eq!(p.dir, absolute(&dir));
        assert_eq!(set.vm_groups()[0].sys_path, [absolute(&dir.join("python"))]);
        assert!(set.operational_xml().contains("my package dir</directory>"));
    }

    /// Parses and validates `xml` as operational data.
    fn validate(xml: &str) -> Result<(), String> {
        use yang5::data::{DataFormat, DataParserFlags, DataTree, DataValidationFlags};
        DataTree::parse_string(
            crate::yang::test_context(),
            xml,
            DataFormat::XML,
            DataParserFlags::STRICT,
            DataValidationFlags::PRESENT,
        )
        .map(|_| ())
        .map_err(|e| format!("{e}: {xml}"))
    }

    #[test]
    fn operational_xml_validates_against_the_yang() {
        let tmp = tempfile::tempdir().unwrap();
        write_package_dir(
            tmp.path(),
            "full",
            &meta(
                "full",
                &format!(
                    "<description>A &lt;tricky&gt; &amp; \"quoted\" text</description>\
                     <ncs-min-version>6.0</ncs-min-version><ncs-max-version>6.4</ncs-max-version>\
                     <python-package><vm-name>vm</vm-name></python-package>\
                     <required-package><name>lib</name><min-version>1.0</min-version>\
                     <max-version>2.0-rc_1</max-version></required-package>\
                     {}{}\
                     <component><name>up</name><upgrade><python-class-name>u.U\
                     </python-class-name></upgrade></component>\
                     <component><name>ned</name><ned><netconf/></ned></component>",
                    app("main", "full.main.Main"),
                    app("library", "")
                ),
            ),
            true,
        );
        write_package_dir(tmp.path(), "lib", &meta("lib", ""), false);
        write_package_dir(
            tmp.path(),
            "needs",
            &meta("needs", &requires("ghost")),
            false,
        );
        write_package_dir(
            tmp.path(),
            "needs-version",
            &meta(
                "needs-version",
                "<required-package><name>lib</name><min-version>3.0</min-version>\
                 </required-package>",
            ),
            false,
        );
        write_package_dir(tmp.path(), "c1", &meta("c1", &requires("c2")), false);
        write_package_dir(tmp.path(), "c2", &meta("c2", &requires("c1")), false);
        write_package_dir(tmp.path(), "bad\u{1}dir", "not xml", false);
        let set = discover(tmp.path());
        let xml = set.operational_xml();
        validate(&xml).unwrap();
        for wanted in [
            "<up/>",
            "<circular-dependency/>",
            "<package-meta-data-error/>",
            "<missing-dependency><package-name>ghost</package-name></missing-dependency>",
            "<package-name>lib</package-name><package-version>3.0</package-version>",
            "A &lt;tricky&gt; &amp; &quot;quoted&quot; text",
            "<name>bad\u{FFFD}dir</name>",
            "<python-class-name></python-class-name>",
            "<component><name>ned</name></component>",
        ] {
            assert!(xml.contains(wanted), "{wanted} not in {xml}");
        }

        // Every status the supervisor may set validates too.
        let mut set = set;
        for status in [
            OperStatus::PythonUninitialized,
            OperStatus::BadNcsVersion,
            OperStatus::FileLoadError,
            OperStatus::ProgramCodeError,
        ] {
            set.packages[0].status = status.clone();
            set.packages[0].error_info = Some("why".into());
            let xml = set.operational_xml();
            validate(&xml).unwrap();
            assert!(xml.contains(&format!("<{}/>", status.as_str())));
        }

        // An empty set is valid, and libyang really checks: two statuses are refused.
        validate(&PackageSet::default().operational_xml()).unwrap();
        let two = xml.replacen("<oper-status>", "<oper-status><up/>", 1);
        assert!(validate(&two).is_err(), "libyang accepted two statuses");
    }

    #[test]
    fn repository_packages_are_all_up() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("packages");
        let set = discover(&dir);
        let names: Vec<&str> = set.packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "common-lib",
                "demo-actions",
                "demo-service",
                "hello-worker",
                "shared-a",
                "shared-b",
                "ticker"
            ]
        );
        let ticker = set.get("ticker").unwrap();
        assert_eq!(ticker.streams[0].name, "ticker");
        assert!(ticker.components[0].source.is_some());
        for p in &set.packages {
            assert_eq!(p.status, OperStatus::Up, "{}: {:?}", p.name, p.error_info);
            assert_eq!(p.version.as_deref(), Some("1.0"), "{}", p.name);
        }
        assert!(set.get("common-lib").unwrap().is_library());

        let groups = set.vm_groups();
        let summary: Vec<(&str, Vec<&str>, bool)> = groups
            .iter()
            .map(|g| (g.vm_name.as_str(), g.package_names(), g.has_applications()))
            .collect();
        assert_eq!(
            summary,
            [
                ("common-lib", vec!["common-lib"], false),
                ("demo-actions", vec!["demo-actions"], true),
                ("demo-service", vec!["demo-service"], true),
                ("hello-worker", vec!["hello-worker"], true),
                ("shared-vm", vec!["shared-a", "shared-b"], true),
                ("ticker", vec!["ticker"], true),
            ]
        );
        let shared = &groups[4];
        let py = |name: &str| absolute(&dir.join(name).join("python"));
        assert_eq!(
            shared.sys_path,
            [py("shared-a"), py("shared-b"), py("common-lib")]
        );
        validate(&set.operational_xml()).unwrap();
    }
}
