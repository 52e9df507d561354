//! The server's libyang context: loading the modules of a directory, and describing them for the
//! NETCONF layer (module capabilities in the `<hello>`, module source for `<get-schema>`).
//!
//! Loading rules (see [`YangContext::load`]):
//! - every `*.yang` file in the directory (not in subdirectories, not dotfiles) whose first
//!   statement is `module` is loaded and *implemented*; file names may be `name.yang` or
//!   `name@revision.yang`, and are processed in file-name order so that errors are reproducible;
//! - files whose first statement is `submodule` are not loaded directly: libyang finds them
//!   through the search directory when their module includes them;
//! - imports are resolved from the same directory and its subdirectories (the only search
//!   directory; libyang's default of also searching the current working directory is switched
//!   off, so the set of modules does not depend on where the server was started) or from
//!   libyang's built-in modules. A module that only supplies definitions to others, and that the
//!   server does not implement, therefore goes into a subdirectory (`yang/imports/`): it is
//!   loaded when imported, and advertised as imported, not implemented;
//! - any failure is a hard error naming the file: a server that silently runs with half its
//!   schema would reject valid configuration later in confusing ways.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::{CStr, CString, c_char};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::{PoisonError, RwLock};

use yang5::context::{Context, ContextFlags};
use yang5::ffi;
use yang5::schema::{SchemaModule, SchemaOutputFormat, SchemaPrinterFlags};
use yang5::utils::Binding;

/// libyang's built-in modules that pyvmd advertises like its own.
///
/// libyang 5 compiles in `ietf-inet-types`, `ietf-yang-types` (both at revision 2025-12-22),
/// `ietf-yang-metadata`, `yang`, `default`, `ietf-yang-schema-mount`, `ietf-yang-structure-ext`,
/// `ietf-datastores` and `ietf-yang-library@2019-01-04`. Of these, the server really implements
/// the YANG library (it serves `/yang-library` and `/modules-state`) and the datastore identities
/// that the library refers to; `ietf-yang-metadata` is advertised as netopeer2 does, because
/// `ietf-origin` and `ietf-netconf-nmda` import it and clients want to fetch it. `yang` and
/// `default` are libyang's private carriers of protocol attributes, and pyvmd does not
/// implement schema mount, so those are not advertised. The type modules are listed by
/// [`YangContext::imported_modules`] when an advertised module imports them.
const ADVERTISED_INTERNAL: &[&str] =
    &["ietf-datastores", "ietf-yang-library", "ietf-yang-metadata"];

/// Every context [`YangContext::load`] built, oldest first (they are never freed), for
/// [`module_namespace`].
static LOADED: RwLock<Vec<&'static Context>> = RwLock::new(Vec::new());

/// The raw libyang context behind `ctx`, for the libyang calls that yang5 does not wrap.
///
/// yang5 keeps the pointer private; every module of a context points back to it, and a context
/// always holds libyang's built-in modules, so the first module gives it.
pub fn raw_context(ctx: &Context) -> *mut ffi::ly_ctx {
    match ctx.modules(false).next() {
        // SAFETY: a module of the live context `ctx`.
        Some(module) => unsafe { (*module.as_raw()).ctx },
        // ly_ctx_new() always loads the built-in modules, so a context without modules cannot
        // exist; a null pointer would make the caller's libyang call fail its argument check.
        None => ptr::null_mut(),
    }
}

/// The XML namespace of the YANG module `name`, looked up in the contexts the server loaded
/// (the newest first); `None` if none of them has the module.
///
/// For code that maps the module-name prefixes of libyang paths (error paths) to namespaces
/// and has no context at hand.
pub fn module_namespace(name: &str) -> Option<String> {
    let loaded = LOADED.read().unwrap_or_else(PoisonError::into_inner);
    loaded.iter().rev().find_map(|ctx| {
        ctx.modules(false)
            .find(|m| m.name() == name)
            .map(|m| m.namespace().to_owned())
    })
}

/// Why a YANG directory could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum YangError {
    /// The directory itself cannot be read.
    #[error("cannot read YANG directory {}: {source}", dir.display())]
    Dir {
        /// The directory.
        dir: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file in the directory cannot be read.
    #[error("cannot read YANG file {}: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A `.yang` file that is not a YANG module or submodule (or not UTF-8 text).
    #[error("{}: not a YANG module: {reason}", file.display())]
    NotYang {
        /// The file.
        file: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// libyang rejected a module file (syntax, unresolved import, compile error, ...).
    #[error("{}: {message}", file.display())]
    Load {
        /// The file that was being loaded.
        file: PathBuf,
        /// libyang's messages, in the order it produced them.
        message: String,
    },
    /// Features could not be enabled (unknown module or feature).
    #[error("cannot enable features {features:?} of module {module}: {message}")]
    Features {
        /// The module named in the feature list.
        module: String,
        /// The features asked for.
        features: Vec<String>,
        /// libyang's messages.
        message: String,
    },
    /// libyang failed outside any particular file (creating the context, the search directory).
    #[error("libyang: {message}")]
    Context {
        /// libyang's messages.
        message: String,
    },
}

/// A YANG module as the server advertises it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleInfo {
    /// Module name.
    pub name: String,
    /// Newest revision, if the module has one.
    pub revision: Option<String>,
    /// XML namespace.
    pub namespace: String,
    /// The module's prefix.
    pub prefix: String,
    /// `"1"` or `"1.1"`, as in the module's `yang-version` statement. RFC 7950 §5.6.4 has YANG
    /// 1.1 modules announced through the YANG library rather than the `<hello>`; the NETCONF
    /// layer decides what to list where.
    pub yang_version: &'static str,
    /// True if the server implements the module; false if it is only imported (for types,
    /// groupings or identities). RFC 7895's `conformance-type`.
    pub implemented: bool,
    /// Enabled features, in the order the module defines them.
    pub features: Vec<String>,
    /// Names of the modules that deviate this one, sorted.
    pub deviations: Vec<String>,
    /// The module's submodules.
    pub submodules: Vec<SubmoduleInfo>,
    /// The file the module was loaded from, if it comes from the server's YANG directory;
    /// `None` for libyang's built-in modules.
    pub source: Option<PathBuf>,
}

/// A submodule of a [`ModuleInfo`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmoduleInfo {
    /// Submodule name.
    pub name: String,
    /// Newest revision, if the submodule has one.
    pub revision: Option<String>,
    /// The file it was loaded from, if it is in the server's YANG directory.
    pub source: Option<PathBuf>,
}

impl ModuleInfo {
    /// The module capability of RFC 6020 §5.6.4:
    /// `<namespace>?module=<name>[&revision=<date>][&features=a,b][&deviations=x,y]`.
    ///
    /// The string is not XML-escaped: the `&` separators must be written as `&amp;` in the
    /// `<hello>`.
    pub fn capability(&self) -> String {
        let mut cap = format!("{}?module={}", self.namespace, self.name);
        if let Some(revision) = &self.revision {
            cap.push_str("&revision=");
            cap.push_str(revision);
        }
        if !self.features.is_empty() {
            cap.push_str("&features=");
            cap.push_str(&self.features.join(","));
        }
        if !self.deviations.is_empty() {
            cap.push_str("&deviations=");
            cap.push_str(&self.deviations.join(","));
        }
        cap
    }
}

/// The first statement of a `.yang` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SourceKind {
    Module,
    Submodule,
}

/// A `.yang` file of the directory, read once at load time.
#[derive(Debug, Clone)]
struct SourceFile {
    /// Path inside the YANG directory.
    path: PathBuf,
    /// The path with symlinks resolved: what libyang records as a module's file path.
    real: PathBuf,
    kind: SourceKind,
    /// The (sub)module name from the file's first statement.
    name: String,
    /// The file's text. Kept so that `<get-schema>` returns exactly what was loaded even if the
    /// file changes on disk later.
    text: String,
}

/// The libyang context of the server, with the modules of its YANG directory loaded.
///
/// The context is leaked on purpose and handed out as `&'static Context`: libyang data trees
/// borrow their context, and the datastores, the session tasks and the VM runtime all keep
/// trees (`DataTree<'static>`) that outlive any particular scope. One context lives for the
/// whole server, so the leak is a fixed cost, paid again only if the server builds a new
/// context (for instance after a package reload that brings new YANG); freeing the old one
/// would require proving that no tree still points into it, which `'static` lets us avoid.
#[derive(Debug)]
pub struct YangContext {
    ctx: &'static Context,
    /// The YANG directory, canonicalized.
    dir: PathBuf,
    files: Vec<SourceFile>,
    /// `files` index by resolved path.
    by_real: HashMap<PathBuf, usize>,
    /// `files` index by (module name, revision) of the module each file produced. Needed for
    /// files that duplicate a libyang built-in module: libyang keeps its own copy (which has no
    /// file path) and our file is the source of that same module and revision.
    by_module: HashMap<(String, Option<String>), usize>,
    /// `files` index by name, for package submodules (libyang records no file for them: they
    /// are parsed from their prepared text).
    by_submodule: HashMap<String, usize>,
    /// libyang's warnings while loading, as `message (while loading file)`.
    warnings: Vec<String>,
}

impl YangContext {
    /// Builds a context from the `*.yang` files of `yang_dir` (see the module documentation for
    /// the rules) and enables `features`: `(module, [feature, ...])`.
    ///
    /// A module named in `features` gets exactly those features enabled (all others disabled;
    /// `["*"]` enables all). If no file of the directory holds that module, it is implemented
    /// anyway, from the directory or libyang's built-in modules: asking for features means the
    /// server implements it.
    ///
    /// libyang's warnings are logged with `tracing` and kept in [`YangContext::warnings`].
    ///
    /// # Errors
    /// A [`YangError`] naming the file (or the module, for features) and carrying libyang's
    /// messages, for the first file that cannot be read or loaded.
    pub fn load(yang_dir: &Path, features: &[(&str, &[&str])]) -> Result<YangContext, YangError> {
        YangContext::load_with_packages(yang_dir, &[], features).map(|(yang, _)| yang)
    }

    /// [`YangContext::load`], and then the YANG of packages on top: each package's modules are
    /// implemented with all their features, after the package's text is prepared
    /// ([`super::source::prepare`]: `tailf:action` becomes an action, undeclared `tailf:`
    /// extensions are dropped). Imports among package modules are served from the packages
    /// (a package may import another's module), else from the YANG directory.
    ///
    /// A package whose YANG cannot be read or compiled does not stop the others: it is left
    /// out (the context is rebuilt without it, so nothing of it remains) and returned in the
    /// map, package name → the reason (libyang's messages, with the file).
    ///
    /// # Errors
    /// As [`YangContext::load`], for the modules of the YANG directory.
    pub fn load_with_packages(
        yang_dir: &Path,
        packages: &[PackageYang],
        features: &[(&str, &[&str])],
    ) -> Result<(YangContext, BTreeMap<String, String>), YangError> {
        let dir = yang_dir.canonicalize().map_err(|source| YangError::Dir {
            dir: yang_dir.to_path_buf(),
            source,
        })?;
        let files = scan_dir(&dir)?;
        let mut failed = BTreeMap::new();
        let sources = package_sources(&dir, &files, packages, &mut failed);
        loop {
            let usable: Vec<&PackageSource> = sources
                .iter()
                .filter(|s| !failed.contains_key(&s.package))
                .collect();
            match build(&dir, &files, &usable, features)? {
                Ok(yang) => return Ok((yang, failed)),
                Err((package, message)) => {
                    tracing::warn!(package, error = %message, "the package's YANG does not load");
                    failed.insert(package, message);
                }
            }
        }
    }

    /// The libyang context, for parsing and validating data trees.
    pub fn context(&self) -> &'static Context {
        self.ctx
    }

    /// The YANG directory the context was loaded from (canonicalized).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// libyang's warnings while loading, each once, as `message (while loading file)`. The file
    /// is the one being loaded when libyang (re)compiled the module the message is about, so
    /// the message itself (which names the schema node) is the better guide.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The modules the server implements, sorted by name and revision: every module loaded from
    /// the directory or implemented because another module augments or deviates it, and the
    /// libyang built-in modules the server implements (`ietf-yang-library`, `ietf-datastores`,
    /// `ietf-yang-metadata`).
    ///
    /// The NETCONF layer builds its module capabilities ([`ModuleInfo::capability`]) and the
    /// YANG library from this list and [`YangContext::imported_modules`].
    pub fn modules(&self) -> Vec<ModuleInfo> {
        let mut list: Vec<ModuleInfo> = self
            .advertised()
            .into_iter()
            .map(|module| self.module_info(&module))
            .collect();
        sort_modules(&mut list);
        list
    }

    /// The modules that are in the context only because an advertised module imports them
    /// (directly or through other imports), sorted by name and revision. RFC 7895 lists them
    /// with conformance-type `import`, and clients fetch them with `<get-schema>` to compile
    /// the modules that import them.
    pub fn imported_modules(&self) -> Vec<ModuleInfo> {
        let mut seen: HashSet<*mut ffi::lys_module> = HashSet::new();
        let mut queue: Vec<*mut ffi::lys_module> = Vec::new();
        for module in self.advertised() {
            seen.insert(module.as_raw());
            queue.push(module.as_raw());
        }
        let mut imported = Vec::new();
        while let Some(raw) = queue.pop() {
            // SAFETY: `raw` is a module of our context, which is never freed.
            for import in unsafe { module_imports(raw) } {
                if seen.insert(import) {
                    queue.push(import);
                    // SAFETY: as above; libyang resolved the import to a module of the context.
                    if unsafe { (*import).implemented } == 0 {
                        imported.push(import);
                    }
                }
            }
        }
        let mut list: Vec<ModuleInfo> = imported
            .into_iter()
            // SAFETY: a module of our context.
            .map(|raw| self.module_info(&unsafe { SchemaModule::from_raw(self.ctx, raw) }))
            .collect();
        sort_modules(&mut list);
        list
    }

    /// The YANG source of a module or submodule of the context, for `<get-schema>`.
    ///
    /// With `revision` `None` (or empty), the implemented revision of a module is chosen, else
    /// its newest. A (sub)module loaded from the YANG directory is returned exactly as the file
    /// read at load time; libyang's built-in modules are printed by libyang in YANG syntax.
    /// `None` if the context has no such module or submodule.
    pub fn schema_text(&self, name: &str, revision: Option<&str>) -> Option<String> {
        let revision = revision.filter(|r| !r.is_empty());
        if let Some(module) = self.find_module(name, revision) {
            if let Some(index) = self.module_source(&module) {
                return Some(self.files[index].text.clone());
            }
            return module
                .print_string(SchemaOutputFormat::YANG, SchemaPrinterFlags::empty())
                .ok();
        }

        for module in self.ctx.modules(false) {
            // SAFETY: a module of our context.
            let submodules = unsafe { module_submodules(module.as_raw()) };
            for sub in submodules {
                if sub.name != name || (revision.is_some() && sub.revision.as_deref() != revision) {
                    continue;
                }
                if let Some(index) = self.submodule_source(&sub) {
                    return Some(self.files[index].text.clone());
                }
                return module
                    .get_submodule(&sub.name, sub.revision.as_deref())
                    .and_then(|s| {
                        s.print_string(SchemaOutputFormat::YANG, SchemaPrinterFlags::empty())
                            .ok()
                    });
            }
        }
        None
    }

    /// The YIN form of a module or submodule of the context, printed by libyang, for
    /// `<get-schema>` with format `yin`. Revisions are chosen as in [`YangContext::schema_text`].
    pub fn schema_yin(&self, name: &str, revision: Option<&str>) -> Option<String> {
        let revision = revision.filter(|r| !r.is_empty());
        if let Some(module) = self.find_module(name, revision) {
            return module
                .print_string(SchemaOutputFormat::YIN, SchemaPrinterFlags::empty())
                .ok();
        }
        self.ctx.modules(false).find_map(|module| {
            // SAFETY: a module of our context.
            let submodules = unsafe { module_submodules(module.as_raw()) };
            let sub = submodules.into_iter().find(|sub| {
                sub.name == name && (revision.is_none() || sub.revision.as_deref() == revision)
            })?;
            module
                .get_submodule(&sub.name, sub.revision.as_deref())
                .and_then(|s| {
                    s.print_string(SchemaOutputFormat::YIN, SchemaPrinterFlags::empty())
                        .ok()
                })
        })
    }

    /// The modules `modules()` lists, in context order: implemented ones, except libyang's
    /// built-in modules that the server does not implement unless a file of the directory
    /// asked for them.
    fn advertised(&self) -> Vec<SchemaModule<'static>> {
        let internal = self.ctx.internal_module_count() as usize;
        self.ctx
            .modules(false)
            .enumerate()
            .filter(|(index, module)| {
                module.is_implemented()
                    && (*index >= internal
                        || ADVERTISED_INTERNAL.contains(&module.name())
                        || self.module_source(module).is_some())
            })
            .map(|(_, module)| module)
            .collect()
    }

    /// Finds a module by name and optional revision without going through yang5's lookups,
    /// which panic on names containing NUL (the name comes from a client).
    fn find_module(&self, name: &str, revision: Option<&str>) -> Option<SchemaModule<'static>> {
        let candidates: Vec<SchemaModule<'static>> = self
            .ctx
            .modules(false)
            .filter(|m| m.name() == name)
            .collect();
        match revision {
            Some(revision) => candidates
                .into_iter()
                .find(|m| m.revision() == Some(revision)),
            None => {
                let mut candidates = candidates;
                if let Some(pos) = candidates.iter().position(|m| m.is_implemented()) {
                    return Some(candidates.swap_remove(pos));
                }
                // Revisions are dates, so the string order is the time order; a module
                // without revision counts as the oldest (None < Some).
                candidates
                    .into_iter()
                    .max_by(|a, b| a.revision().cmp(&b.revision()))
            }
        }
    }

    fn module_info(&self, module: &SchemaModule<'_>) -> ModuleInfo {
        let raw = module.as_raw();
        // SAFETY: a module of our context, which is never freed; the arrays read are libyang
        // sized arrays of that module.
        let (yang_version, features, mut deviations, submodules) = unsafe {
            let version = if u32::from((*raw).version()) == ffi::LYS_VERSION::LYS_VERSION_1_1 {
                "1.1"
            } else {
                "1"
            };
            (
                version,
                module_features(raw),
                sized_array(ffi_ptr((*raw).deviated_by))
                    .iter()
                    .map(|m| cstr((**m).name))
                    .collect::<Vec<_>>(),
                module_submodules(raw),
            )
        };
        deviations.sort();
        deviations.dedup();
        ModuleInfo {
            name: module.name().to_owned(),
            revision: module.revision().map(str::to_owned),
            namespace: module.namespace().to_owned(),
            prefix: module.prefix().to_owned(),
            yang_version,
            implemented: module.is_implemented(),
            features,
            deviations,
            submodules: submodules
                .into_iter()
                .map(|sub| SubmoduleInfo {
                    source: self
                        .submodule_source(&sub)
                        .map(|index| self.files[index].path.clone()),
                    name: sub.name,
                    revision: sub.revision,
                })
                .collect(),
            source: self
                .module_source(module)
                .map(|index| self.files[index].path.clone()),
        }
    }

    /// The file of the directory a module comes from.
    fn module_source(&self, module: &SchemaModule<'_>) -> Option<usize> {
        if let Some(index) = module.filepath().and_then(|p| self.file_index(p)) {
            return Some(index);
        }
        let key = (
            module.name().to_owned(),
            module.revision().map(str::to_owned),
        );
        self.by_module.get(&key).copied()
    }

    /// The file a submodule comes from.
    fn submodule_source(&self, sub: &RawSubmodule) -> Option<usize> {
        match sub.filepath.as_deref() {
            Some(path) => self.file_index(path),
            None => self.by_submodule.get(&sub.name).copied(),
        }
    }

    /// The file of the directory at `path` (a path recorded by libyang).
    fn file_index(&self, path: &str) -> Option<usize> {
        self.by_real.get(Path::new(path)).copied()
    }
}

/// The YANG files of one package (its `src/yang/*.yang`), for
/// [`YangContext::load_with_packages`].
#[derive(Debug, Clone)]
pub struct PackageYang {
    /// The package name.
    pub package: String,
    /// Its `.yang` files.
    pub files: Vec<PathBuf>,
}

/// A package (sub)module, read and prepared for libyang.
struct PackageSource {
    package: String,
    file: SourceFile,
    /// What libyang parses (see [`super::source::prepare`]).
    prepared: CString,
}

/// Reads and prepares the files of `packages`. A package with a file that cannot be read or
/// parsed goes into `failed`. Files that would replace a module of the YANG directory (a
/// package shipping its own copy of `tailf-common`, say) are skipped: the server's copy wins.
fn package_sources(
    dir: &Path,
    base: &[SourceFile],
    packages: &[PackageYang],
    failed: &mut BTreeMap<String, String>,
) -> Vec<PackageSource> {
    let known = tailf_extensions(dir, base);
    let base_names: HashSet<&str> = base
        .iter()
        .map(|f| f.name.as_str())
        .chain(TAILF_COMMON_FAMILY.iter().copied())
        .collect();
    let mut prepared = Vec::new();
    for package in packages {
        for path in &package.files {
            let result = std::fs::read_to_string(path)
                .map_err(|e| e.to_string())
                .and_then(|text| {
                    super::source::prepare(&text, &known).map(|prepared| (text, prepared))
                });
            match result {
                Ok((_, p)) if base_names.contains(p.name.as_str()) => {
                    tracing::warn!(package = package.package, file = %path.display(),
                        module = p.name, "the package's copy of a server module is not loaded");
                }
                Ok((text, p)) => {
                    for warning in &p.warnings {
                        tracing::warn!(package = package.package, file = %path.display(), "{warning}");
                    }
                    prepared.push((package.package.clone(), path.clone(), text, p));
                }
                Err(e) => {
                    failed
                        .entry(package.package.clone())
                        .or_insert_with(|| format!("{}: {e}", path.display()));
                }
            }
        }
    }
    // A family (a module and its submodules) with a tailf:action must be YANG 1.1 throughout.
    let mut raise: HashSet<String> = HashSet::new();
    for (_, _, _, p) in &prepared {
        if p.has_tailf_action {
            raise.insert(p.belongs_to.clone().unwrap_or_else(|| p.name.clone()));
        }
    }
    let mut sources = Vec::new();
    for (package, path, text, p) in prepared {
        let family = p.belongs_to.clone().unwrap_or_else(|| p.name.clone());
        let libyang_text = if raise.contains(&family) {
            super::source::require_yang_1_1(&p.text)
        } else {
            Ok(p.text.clone())
        }
        .and_then(|t| CString::new(t).map_err(|_| "the file contains a NUL byte".to_owned()));
        let libyang_text = match libyang_text {
            Ok(t) => t,
            Err(e) => {
                failed
                    .entry(package.clone())
                    .or_insert_with(|| format!("{}: {e}", path.display()));
                continue;
            }
        };
        let real = path.canonicalize().unwrap_or_else(|_| path.clone());
        sources.push(PackageSource {
            package,
            file: SourceFile {
                path,
                real,
                kind: if p.is_module {
                    SourceKind::Module
                } else {
                    SourceKind::Submodule
                },
                name: p.name,
                text,
            },
            prepared: libyang_text,
        });
    }
    sources
}

/// `tailf-common` and the submodules of Tail-f's own version of it.
const TAILF_COMMON_FAMILY: &[&str] = &[
    "tailf-common",
    "tailf-meta-extensions",
    "tailf-cli-extensions",
];

/// The extensions the `tailf-common` of the YANG directory declares (its own file, or Tail-f's
/// with its submodules, at the top or in a subdirectory).
fn tailf_extensions(dir: &Path, base: &[SourceFile]) -> HashSet<String> {
    let mut texts: Vec<String> = base
        .iter()
        .filter(|f| TAILF_COMMON_FAMILY.contains(&f.name.as_str()))
        .map(|f| f.text.clone())
        .collect();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for sub in entries.flatten().filter(|e| e.path().is_dir()) {
            let Ok(files) = std::fs::read_dir(sub.path()) else {
                continue;
            };
            for file in files.flatten() {
                let name = file.file_name();
                let name = name.to_string_lossy();
                let stem = name.split(['@', '.']).next().unwrap_or_default();
                if name.ends_with(".yang") && TAILF_COMMON_FAMILY.contains(&stem) {
                    texts.extend(std::fs::read_to_string(file.path()));
                }
            }
        }
    }
    texts
        .iter()
        .flat_map(|t| super::source::declared_extensions(t))
        .collect()
}

/// Serves package (sub)modules to libyang when a module imports or includes them: `user_data`
/// points to the `HashMap<String, CString>` of prepared texts by name, which outlives the
/// loading (the callback is removed before it is dropped).
unsafe extern "C" fn package_module_callback(
    mod_name: *const c_char,
    _mod_rev: *const c_char,
    submod_name: *const c_char,
    _submod_rev: *const c_char,
    user_data: *mut std::ffi::c_void,
    format: *mut ffi::LYS_INFORMAT::Type,
    module_data: *mut *const c_char,
    free_module_data: *mut ffi::ly_module_imp_data_free_clb,
) -> ffi::LY_ERR::Type {
    // SAFETY: libyang passes the pointers it was given and valid C strings (submod_name may be
    // NULL); `user_data` is the map `build` registered.
    unsafe {
        let texts = &*(user_data as *const HashMap<String, CString>);
        let wanted = if submod_name.is_null() {
            mod_name
        } else {
            submod_name
        };
        if wanted.is_null() {
            return ffi::LY_ERR::LY_ENOTFOUND;
        }
        let Some(text) = CStr::from_ptr(wanted)
            .to_str()
            .ok()
            .and_then(|n| texts.get(n))
        else {
            return ffi::LY_ERR::LY_ENOTFOUND;
        };
        *format = ffi::LYS_INFORMAT::LYS_IN_YANG;
        *module_data = text.as_ptr();
        *free_module_data = None;
    }
    ffi::LY_ERR::LY_SUCCESS
}

/// One attempt at a context: the directory's modules (an error there is final, the outer
/// `Err`), then the packages' (the first package that fails is the inner `Err`, with
/// libyang's messages).
fn build(
    dir: &Path,
    files: &[SourceFile],
    packages: &[&PackageSource],
    features: &[(&str, &[&str])],
) -> Result<Result<YangContext, (String, String)>, YangError> {
    let ctx =
        Context::new(ContextFlags::DISABLE_SEARCHDIR_CWD).map_err(|e| YangError::Context {
            message: e.to_string(),
        })?;
    // For the libyang calls that yang5 does not wrap (parsing a file with features, reading
    // all stored messages).
    let raw = raw_context(&ctx);

    // Keep every libyang message while loading, not only the last one: when a module fails,
    // the last message is a generic "Parsing module failed" and the cause comes before it.
    let _store = StoreAllMessages::new();
    let mut warnings = Warnings::default();

    set_searchdir(raw, dir)?;
    let texts: HashMap<String, CString> = packages
        .iter()
        .map(|s| (s.file.name.clone(), s.prepared.clone()))
        .collect();
    // SAFETY: `texts` lives until the callback is removed below, before any return.
    unsafe {
        ffi::ly_ctx_set_module_imp_clb(
            raw,
            Some(package_module_callback),
            &texts as *const HashMap<String, CString> as *mut std::ffi::c_void,
        );
    }
    let loaded = load_modules(raw, files, packages, features, &mut warnings);
    // SAFETY: as above.
    unsafe { ffi::ly_ctx_set_module_imp_clb(raw, None, ptr::null_mut()) };
    let by_module = match loaded? {
        Ok(by_module) => by_module,
        Err(failure) => return Ok(Err(failure)),
    };

    let mut files: Vec<SourceFile> = files.to_vec();
    read_found_files(&ctx, dir, &mut files)?;
    let mut by_module = by_module;
    let mut by_submodule = HashMap::new();
    for source in packages {
        let index = files.len();
        files.push(source.file.clone());
        match source.file.kind {
            SourceKind::Submodule => {
                by_submodule.insert(source.file.name.clone(), index);
            }
            SourceKind::Module => {
                // The revision as libyang compiled it.
                if let Some(module) = ctx
                    .modules(false)
                    .find(|m| m.name() == source.file.name && m.is_implemented())
                {
                    by_module.insert(
                        (
                            module.name().to_owned(),
                            module.revision().map(str::to_owned),
                        ),
                        index,
                    );
                }
            }
        }
    }
    let by_real = files
        .iter()
        .enumerate()
        .map(|(index, file)| (file.real.clone(), index))
        .collect();
    let ctx: &'static Context = Box::leak(Box::new(ctx));
    LOADED
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .push(ctx);
    Ok(Ok(YangContext {
        ctx,
        dir: dir.to_path_buf(),
        files,
        by_real,
        by_module,
        by_submodule,
        warnings: warnings.list,
    }))
}

type ModuleIndex = HashMap<(String, Option<String>), usize>;

/// Loads the directory's modules, the features asked for, then the packages' modules.
fn load_modules(
    raw: *mut ffi::ly_ctx,
    files: &[SourceFile],
    packages: &[&PackageSource],
    features: &[(&str, &[&str])],
    warnings: &mut Warnings,
) -> Result<Result<ModuleIndex, (String, String)>, YangError> {
    let mut by_module = HashMap::new();
    let mut featured: HashSet<&str> = HashSet::new();
    for (index, file) in files.iter().enumerate() {
        if file.kind != SourceKind::Module {
            continue;
        }
        let wanted = features
            .iter()
            .find(|(m, _)| *m == file.name)
            .map(|(_, f)| *f);
        let result = parse_module(raw, Input::File(&file.path), wanted);
        let (errors, file_warnings) = take_messages(raw);
        warnings.note(file_warnings, &file.path.display());
        let module = result.map_err(|reason| YangError::Load {
            file: file.path.clone(),
            message: join_messages(reason, errors),
        })?;
        if wanted.is_some() {
            featured.insert(file.name.as_str());
        }
        // SAFETY: libyang returned a valid module of `raw`.
        let (name, revision) = unsafe { (cstr(module.name), opt_cstr(module.revision)) };
        by_module.insert((name, revision), index);
    }

    for (module, wanted) in features {
        if featured.contains(module) {
            continue;
        }
        let result = implement_with_features(raw, module, wanted);
        let (errors, more_warnings) = take_messages(raw);
        warnings.note(more_warnings, &format_args!("the features of {module}"));
        result.map_err(|reason| YangError::Features {
            module: (*module).to_owned(),
            features: wanted.iter().map(|f| (*f).to_owned()).collect(),
            message: join_messages(reason, errors),
        })?;
        featured.insert(module);
    }

    for source in packages {
        if source.file.kind != SourceKind::Module {
            continue;
        }
        // A module another package imported is in the context already, not implemented.
        let name = &source.file.name;
        // SAFETY: valid context and C string.
        let present = CString::new(name.as_str())
            .is_ok_and(|c| unsafe { !ffi::ly_ctx_get_module_latest(raw, c.as_ptr()).is_null() });
        let result = if present {
            implement_with_features(raw, name, &["*"])
        } else {
            parse_module(raw, Input::Text(&source.prepared), Some(&["*"])).map(|_| ())
        };
        let (errors, more_warnings) = take_messages(raw);
        warnings.note(more_warnings, &source.file.path.display());
        if let Err(reason) = result {
            return Ok(Err((
                source.package.clone(),
                format!(
                    "{}: {}",
                    source.file.path.display(),
                    join_messages(reason, errors)
                ),
            )));
        }
    }
    Ok(Ok(by_module))
}

/// Adds to `files` the (sub)modules of the directory that libyang found by itself, in
/// subdirectories. They are read right after libyang did, so that `<get-schema>` serves what
/// was loaded even if the files change later.
fn read_found_files(
    ctx: &Context,
    dir: &Path,
    files: &mut Vec<SourceFile>,
) -> Result<(), YangError> {
    let mut known: HashSet<PathBuf> = files.iter().map(|f| f.real.clone()).collect();
    for path in loaded_file_paths(ctx) {
        if !path.starts_with(dir) || !known.insert(path.clone()) {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|source| YangError::Read {
            file: path.clone(),
            source,
        })?;
        let (kind, name) = first_statement(&text).map_err(|reason| YangError::NotYang {
            file: path.clone(),
            reason,
        })?;
        files.push(SourceFile {
            path: path.clone(),
            real: path,
            kind,
            name,
            text,
        });
    }
    Ok(())
}

/// The files libyang loaded modules and submodules from.
fn loaded_file_paths(ctx: &Context) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    for module in ctx.modules(false) {
        paths.extend(module.filepath().map(PathBuf::from));
        // SAFETY: a module of the live context.
        let submodules = unsafe { module_submodules(module.as_raw()) };
        paths.extend(
            submodules
                .into_iter()
                .filter_map(|s| s.filepath.map(PathBuf::from)),
        );
    }
    paths
}

/// Sorts modules by name, then revision, for a stable `<hello>`.
fn sort_modules(list: &mut [ModuleInfo]) {
    list.sort_by(|a, b| (&a.name, &a.revision).cmp(&(&b.name, &b.revision)));
}

/// Lists the `.yang` files of `dir` in file-name order, reading each one.
fn scan_dir(dir: &Path) -> Result<Vec<SourceFile>, YangError> {
    let dir_error = |source| YangError::Dir {
        dir: dir.to_path_buf(),
        source,
    };
    let mut paths = BTreeMap::new();
    for entry in std::fs::read_dir(dir).map_err(dir_error)? {
        let entry = entry.map_err(dir_error)?;
        let file_name = entry.file_name();
        let bytes = file_name.as_bytes();
        // Dotfiles are editor backups and lock files (often dangling symlinks), not modules.
        if bytes.starts_with(b".") || !bytes.ends_with(b".yang") {
            continue;
        }
        paths.insert(file_name, entry.path());
    }

    let mut files = Vec::new();
    for path in paths.into_values() {
        let read_error = |source| YangError::Read {
            file: path.clone(),
            source,
        };
        // Follows symlinks: a link to a module is a module.
        if !std::fs::metadata(&path).map_err(read_error)?.is_file() {
            continue;
        }
        let bytes = std::fs::read(&path).map_err(read_error)?;
        let real = path.canonicalize().map_err(read_error)?;
        let text = String::from_utf8(bytes).map_err(|e| YangError::NotYang {
            file: path.clone(),
            reason: format!("not UTF-8 text ({e})"),
        })?;
        let (kind, name) = first_statement(&text).map_err(|reason| YangError::NotYang {
            file: path.clone(),
            reason,
        })?;
        files.push(SourceFile {
            path,
            real,
            kind,
            name,
            text,
        });
    }
    Ok(files)
}

/// Reads the first statement of YANG text: `module NAME` or `submodule NAME`.
///
/// Only as much YANG as that needs: whitespace, comments and a quoted or unquoted argument.
fn first_statement(text: &str) -> Result<(SourceKind, String), String> {
    let rest = skip_separators(text.strip_prefix('\u{feff}').unwrap_or(text))?;
    let keyword_end = rest
        .find(|c: char| c.is_whitespace() || matches!(c, '{' | ';' | '"' | '\'' | '/'))
        .unwrap_or(rest.len());
    let kind = match &rest[..keyword_end] {
        "module" => SourceKind::Module,
        "submodule" => SourceKind::Submodule,
        "" => return Err("the file is empty".to_owned()),
        other => {
            let other: String = other.chars().take(40).collect();
            return Err(format!(
                "the first statement is \"{other}\", not \"module\" or \"submodule\""
            ));
        }
    };
    let rest = skip_separators(&rest[keyword_end..])?;
    let name = match rest.chars().next() {
        Some(quote @ ('"' | '\'')) => {
            let body = &rest[1..];
            let end = body
                .find(quote)
                .ok_or_else(|| "unterminated quoted module name".to_owned())?;
            body[..end].trim().to_owned()
        }
        _ => {
            let end = rest
                .find(|c: char| c.is_whitespace() || matches!(c, '{' | ';' | '/'))
                .unwrap_or(rest.len());
            rest[..end].to_owned()
        }
    };
    if name.is_empty() {
        return Err("the module name is missing".to_owned());
    }
    Ok((kind, name))
}

/// Skips whitespace and YANG comments.
fn skip_separators(mut text: &str) -> Result<&str, String> {
    loop {
        text = text.trim_start();
        if let Some(rest) = text.strip_prefix("//") {
            text = rest.find('\n').map_or("", |end| &rest[end..]);
        } else if let Some(rest) = text.strip_prefix("/*") {
            let end = rest
                .find("*/")
                .ok_or_else(|| "unterminated comment".to_owned())?;
            text = &rest[end + 2..];
        } else {
            return Ok(text);
        }
    }
}

/// Makes the thread's libyang logger store every error and warning (and print nothing) while
/// it lives; restores the previous setting when dropped.
///
/// libyang's logger options are global, but it has a thread-local override, which this uses
/// so that other threads keep their settings.
struct StoreAllMessages {
    previous: *mut u32,
    /// libyang keeps a pointer to this value until the override is removed; boxed so that it
    /// does not move.
    _options: Box<u32>,
}

impl StoreAllMessages {
    fn new() -> StoreAllMessages {
        let mut options = Box::new(ffi::LY_LOSTORE);
        // SAFETY: the pointer stays valid until `drop` removes it from libyang.
        let previous = unsafe { ffi::ly_temp_log_options(&mut *options) };
        StoreAllMessages {
            previous,
            _options: options,
        }
    }
}

impl Drop for StoreAllMessages {
    fn drop(&mut self) {
        // SAFETY: restores what was set before `new`.
        unsafe { ffi::ly_temp_log_options(self.previous) };
    }
}

/// Takes (and clears) the messages libyang stored for `raw`: (errors, warnings), each with
/// its line or path when libyang gave one.
fn take_messages(raw: *mut ffi::ly_ctx) -> (Vec<String>, Vec<String>) {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    // SAFETY: `raw` is a live context; the list is libyang's, read before it is cleaned.
    unsafe {
        let mut item = ffi::ly_err_first(raw);
        while !item.is_null() {
            let e = &*item;
            let mut text = opt_cstr(e.msg).unwrap_or_else(|| "unknown error".to_owned());
            if e.line > 0 {
                text.push_str(&format!(" (line {})", e.line));
            } else if let Some(path) = opt_cstr(e.schema_path).or_else(|| opt_cstr(e.data_path)) {
                text.push_str(&format!(" (path {path})"));
            }
            if e.level == ffi::LY_LOG_LEVEL::LY_LLERR {
                errors.push(text);
            } else {
                warnings.push(text);
            }
            item = e.next;
        }
        ffi::ly_err_clean(raw, ptr::null_mut());
    }
    (errors, warnings)
}

/// libyang's warnings while loading, each kept (and logged) once: libyang repeats a module's
/// warnings every time it recompiles the module, which happens again for each later file that
/// depends on it.
#[derive(Default)]
struct Warnings {
    seen: HashSet<String>,
    list: Vec<String>,
}

/// Warnings libyang gives for defects of standard modules we ship verbatim, known and harmless:
/// RFC 6470's `netconf-confirmed-commit` has `when "../confirm-event != 'timeout'"` on a `uses`,
/// one level too high (RFC 6470 errata), so libyang cannot resolve it; it only matters when
/// validating that notification, which the server builds itself.
const KNOWN_ERRATA: &[&str] = &["in expr \"../confirm-event\""];

impl Warnings {
    fn note(&mut self, warnings: Vec<String>, while_loading: &dyn std::fmt::Display) {
        for warning in warnings {
            if KNOWN_ERRATA.iter().any(|e| warning.contains(e)) {
                continue;
            }
            if self.seen.insert(warning.clone()) {
                tracing::warn!("libyang: {warning} (while loading {while_loading})");
                self.list
                    .push(format!("{warning} (while loading {while_loading})"));
            }
        }
    }
}

/// One error text from our own reason and libyang's messages.
fn join_messages(reason: String, errors: Vec<String>) -> String {
    if errors.is_empty() {
        reason
    } else {
        errors.join("; ")
    }
}

/// Adds `dir` as the context's search directory.
fn set_searchdir(raw: *mut ffi::ly_ctx, dir: &Path) -> Result<(), YangError> {
    let c_dir = CString::new(dir.as_os_str().as_bytes()).map_err(|_| YangError::Context {
        message: format!("directory name {} contains a NUL byte", dir.display()),
    })?;
    // SAFETY: valid context and C string.
    let rc = unsafe { ffi::ly_ctx_set_searchdir(raw, c_dir.as_ptr()) };
    if rc != ffi::LY_ERR::LY_SUCCESS {
        let (errors, _) = take_messages(raw);
        return Err(YangError::Context {
            message: join_messages(format!("cannot use search directory (error {rc})"), errors),
        });
    }
    Ok(())
}

/// C strings for a feature list, and the NULL-terminated pointer array libyang takes.
struct FeatureList {
    _strings: Vec<CString>,
    pointers: Vec<*const c_char>,
}

impl FeatureList {
    fn new(features: &[&str]) -> Result<FeatureList, String> {
        let strings = features
            .iter()
            .map(|f| CString::new(*f).map_err(|_| format!("feature name {f:?} contains NUL")))
            .collect::<Result<Vec<_>, _>>()?;
        let mut pointers: Vec<*const c_char> = strings.iter().map(|s| s.as_ptr()).collect();
        pointers.push(ptr::null());
        Ok(FeatureList {
            _strings: strings,
            pointers,
        })
    }

    fn as_mut_ptr(&mut self) -> *mut *const c_char {
        self.pointers.as_mut_ptr()
    }
}

/// Where a module's text comes from.
enum Input<'a> {
    /// A file of the YANG directory (libyang records the path).
    File(&'a Path),
    /// A package module's prepared text.
    Text(&'a CStr),
}

/// Parses, implements and compiles a module, with `features` (None: libyang's default, all
/// disabled). Returns the module, which may be a built-in one when the file holds the same
/// module and revision.
fn parse_module(
    raw: *mut ffi::ly_ctx,
    source: Input<'_>,
    features: Option<&[&str]>,
) -> Result<&'static ffi::lys_module, String> {
    let mut features = features.map(FeatureList::new).transpose()?;
    let features_ptr = features
        .as_mut()
        .map_or(ptr::null_mut(), FeatureList::as_mut_ptr);

    let mut input = ptr::null_mut();
    let rc = match source {
        Input::File(path) => {
            let c_path = CString::new(path.as_os_str().as_bytes())
                .map_err(|_| "the file name contains a NUL byte".to_owned())?;
            // SAFETY: valid C string and out-pointer.
            unsafe { ffi::ly_in_new_filepath(c_path.as_ptr(), 0, &mut input) }
        }
        // SAFETY: the text outlives `input`, which is freed below.
        Input::Text(text) => unsafe { ffi::ly_in_new_memory(text.as_ptr(), &mut input) },
    };
    if rc != ffi::LY_ERR::LY_SUCCESS {
        return Err(format!("cannot read the module (libyang error {rc})"));
    }
    let mut module = ptr::null_mut();
    // SAFETY: valid context, input and feature array (kept alive by `features`).
    let rc = unsafe {
        let rc = ffi::lys_parse(
            raw,
            input,
            ffi::LYS_INFORMAT::LYS_IN_YANG,
            features_ptr,
            &mut module,
        );
        ffi::ly_in_free(input, 0);
        rc
    };
    if rc != ffi::LY_ERR::LY_SUCCESS || module.is_null() {
        return Err(format!("libyang error {rc}"));
    }
    // SAFETY: a module of the context, which is never freed once loading succeeds (and not
    // used after a failure).
    Ok(unsafe { &*module })
}

/// Implements `module` with `features`, loading it from the search directory or libyang's
/// built-in modules if it is not in the context yet.
fn implement_with_features(
    raw: *mut ffi::ly_ctx,
    module: &str,
    features: &[&str],
) -> Result<(), String> {
    let c_name =
        CString::new(module).map_err(|_| format!("module name {module:?} contains NUL"))?;
    let mut list = FeatureList::new(features)?;
    // SAFETY: valid context, C strings and NULL-terminated feature array.
    unsafe {
        let existing = ffi::ly_ctx_get_module_implemented(raw, c_name.as_ptr());
        if existing.is_null() {
            let loaded =
                ffi::ly_ctx_load_module(raw, c_name.as_ptr(), ptr::null(), list.as_mut_ptr());
            if loaded.is_null() {
                return Err("module not found".to_owned());
            }
        } else {
            let rc = ffi::lys_set_implemented(existing, list.as_mut_ptr());
            if rc != ffi::LY_ERR::LY_SUCCESS {
                return Err(format!("libyang error {rc}"));
            }
        }
    }
    Ok(())
}

/// A submodule as libyang records it.
struct RawSubmodule {
    name: String,
    revision: Option<String>,
    filepath: Option<String>,
}

/// The submodules of a module.
///
/// # Safety
/// `raw` must point to a live module.
unsafe fn module_submodules(raw: *mut ffi::lys_module) -> Vec<RawSubmodule> {
    // SAFETY: per the contract, and `submodules` is a sized array of the module.
    unsafe {
        sized_array(ffi_ptr((*raw).submodules))
            .iter()
            .map(|s| RawSubmodule {
                name: cstr(s.name),
                revision: opt_cstr(s.revision),
                filepath: opt_cstr(s.filepath),
            })
            .collect()
    }
}

/// The enabled features of an implemented module (none for an imported one).
///
/// # Safety
/// `raw` must point to a live module.
unsafe fn module_features(raw: *mut ffi::lys_module) -> Vec<String> {
    // SAFETY: per the contract; `features` is a sized array of the compiled module.
    unsafe {
        let compiled = (*raw).compiled;
        if compiled.is_null() {
            return Vec::new();
        }
        sized_array(ffi_ptr((*compiled).features))
            .iter()
            .map(|f| cstr(*f))
            .collect()
    }
}

/// The modules that a module and its submodules import.
///
/// # Safety
/// `raw` must point to a live module.
unsafe fn module_imports(raw: *mut ffi::lys_module) -> Vec<*mut ffi::lys_module> {
    // SAFETY: per the contract; the arrays are sized arrays of the parsed (sub)modules.
    unsafe {
        let parsed = (*raw).parsed;
        if parsed.is_null() {
            return Vec::new();
        }
        let mut imports: Vec<*mut ffi::lys_module> = sized_array(ffi_ptr((*parsed).imports))
            .iter()
            .map(|i| i.module)
            .collect();
        for include in sized_array(ffi_ptr((*parsed).includes)) {
            if !include.submodule.is_null() {
                let sub = &*include.submodule;
                imports.extend(sized_array(ffi_ptr(sub.imports)).iter().map(|i| i.module));
            }
        }
        imports.retain(|m| !m.is_null());
        imports
    }
}

/// `ptr` as a const pointer, to read libyang arrays whatever their declared mutability.
fn ffi_ptr<T>(ptr: *mut T) -> *const T {
    ptr.cast_const()
}

/// A libyang "sized array" (`LY_ARRAY`) as a slice: its length is a `u64` stored just before
/// the first element, and a NULL pointer is an empty array.
///
/// # Safety
/// `ptr` must be NULL or a live libyang sized array of `T`.
unsafe fn sized_array<'a, T>(ptr: *const T) -> &'a [T] {
    if ptr.is_null() {
        return &[];
    }
    // SAFETY: per the contract (LY_ARRAY_COUNT).
    unsafe {
        let count = ptr.cast::<u64>().sub(1).read_unaligned();
        std::slice::from_raw_parts(ptr, count as usize)
    }
}

/// A C string as a `String` (lossy: libyang checks that YANG is UTF-8, so nothing is lost in
/// practice).
///
/// # Safety
/// `p` must be a valid C string.
unsafe fn cstr(p: *const c_char) -> String {
    // SAFETY: per the contract.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// Like [`cstr`], with NULL as `None`.
///
/// # Safety
/// `p` must be NULL or a valid C string.
unsafe fn opt_cstr(p: *const c_char) -> Option<String> {
    if p.is_null() {
        None
    } else {
        // SAFETY: per the contract.
        Some(unsafe { cstr(p) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yang5::data::{Data, DataFormat, DataParserFlags, DataTree, DataValidationFlags};

    /// What pyvmd passes for `ietf-netconf` today.
    const NETCONF_FEATURES: &[(&str, &[&str])] = &[(
        "ietf-netconf",
        &["writable-running", "rollback-on-error", "validate"],
    )];

    fn repo_yang_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("yang")
    }

    fn load_repo() -> YangContext {
        match YangContext::load(&repo_yang_dir(), NETCONF_FEATURES) {
            Ok(ctx) => ctx,
            Err(e) => panic!("loading yang/ failed: {e}"),
        }
    }

    fn module<'a>(list: &'a [ModuleInfo], name: &str) -> &'a ModuleInfo {
        list.iter()
            .find(|m| m.name == name)
            .unwrap_or_else(|| panic!("module {name} not listed"))
    }

    fn parse(ctx: &YangContext, xml: &str) -> Result<DataTree<'static>, yang5::Error> {
        DataTree::parse_string(
            ctx.context(),
            xml,
            DataFormat::XML,
            DataParserFlags::STRICT | DataParserFlags::NO_STATE,
            DataValidationFlags::NO_STATE,
        )
    }

    #[test]
    fn repo_modules_load_without_warnings() {
        let ctx = load_repo();
        assert!(ctx.warnings().is_empty(), "warnings: {:?}", ctx.warnings());

        let modules = ctx.modules();
        let ncs = module(&modules, "tailf-ncs");
        assert!(ncs.implemented);
        assert_eq!(ncs.namespace, "http://tail-f.com/ns/ncs");
        assert_eq!(ncs.prefix, "ncs");
        assert_eq!(ncs.yang_version, "1.1");
        assert_eq!(
            ncs.source.as_deref(),
            Some(ctx.dir().join("tailf-ncs.yang").as_path())
        );
        let alarms = module(&modules, "tailf-ncs-alarms");
        assert_eq!(alarms.namespace, "http://tail-f.com/ns/ncs-alarms");

        let netconf = module(&modules, "ietf-netconf");
        assert_eq!(
            netconf.features,
            ["writable-running", "rollback-on-error", "validate"]
        );
        assert_eq!(
            netconf.capability(),
            "urn:ietf:params:xml:ns:netconf:base:1.0?module=ietf-netconf&revision=2011-06-01\
             &features=writable-running,rollback-on-error,validate"
        );

        // The built-in modules we implement are listed, libyang's private ones are not.
        let library = module(&modules, "ietf-yang-library");
        assert_eq!(library.revision.as_deref(), Some("2019-01-04"));
        assert_eq!(library.source, None);
        module(&modules, "ietf-datastores");
        for private in ["yang", "default", "ietf-yang-schema-mount"] {
            assert!(
                modules.iter().all(|m| m.name != private),
                "{private} listed"
            );
        }
        assert!(modules.iter().all(|m| m.implemented));
        let mut sorted = modules.clone();
        sort_modules(&mut sorted);
        assert_eq!(sorted, modules);
    }

    #[test]
    fn python_vm_schema_and_data() {
        let ctx = load_repo();
        let level = ctx
            .context()
            .find_path("/tailf-ncs:python-vm/logging/level")
            .expect("python-vm/logging/level");
        assert_eq!(level.name(), "level");
        assert!(level.is_config());
        assert_eq!(
            level.default_value_canonical().ok().flatten().as_deref(),
            Some("level-info")
        );
        assert!(
            ctx.context()
                .find_path(
                    "/tailf-ncs:python-vm/status/current/packages/components/class-names/status"
                )
                .is_ok_and(|n| !n.is_config())
        );

        let good = r#"<python-vm xmlns="http://tail-f.com/ns/ncs">
                        <logging><level>level-debug</level></logging>
                      </python-vm>"#;
        let tree = parse(&ctx, good).expect("valid python-vm data");
        let node = tree
            .find_path("/tailf-ncs:python-vm/logging/level")
            .expect("level in tree");
        assert_eq!(node.value_canonical().as_deref(), Some("level-debug"));

        let bad = good.replace("level-debug", "level-chatty");
        let err = parse(&ctx, &bad).expect_err("bad enum must be rejected");
        assert!(
            err.msg.as_deref().unwrap_or("").contains("level-chatty"),
            "unexpected error: {err:?}"
        );

        // vm-levels entries need their level.
        let missing = r#"<python-vm xmlns="http://tail-f.com/ns/ncs">
                           <logging><vm-levels><node-id>l3vpn</node-id></vm-levels></logging>
                         </python-vm>"#;
        assert!(parse(&ctx, missing).is_err());
    }

    #[test]
    fn package_yang_written_for_nso_compiles() {
        // The usual shape of an NSO service package's YANG (YANG 1.0, as most are).
        let dir = tempfile::tempdir().expect("tempdir");
        for file in ["tailf-ncs.yang", "tailf-ncs-alarms.yang"] {
            std::fs::copy(repo_yang_dir().join(file), dir.path().join(file)).expect("copy");
        }
        let package = r#"module l3vpn {
  namespace "http://example.com/l3vpn";
  prefix l3vpn;
  import ietf-inet-types { prefix inet; }
  import tailf-ncs { prefix ncs; }
  import tailf-ncs-alarms { prefix al; }
  identity l3vpn-alarm { base al:alarm-type; }
  augment /ncs:services {
    list l3vpn {
      key name;
      uses ncs:service-data;
      ncs:servicepoint l3vpn-servicepoint;
      ncs:conflicts-with other-servicepoint;
      leaf name { type string; }
      leaf device { type leafref { path "/ncs:devices/ncs:device/ncs:name"; } }
      leaf group { type leafref { path "/ncs:devices/ncs:device-group/ncs:name"; } }
      leaf address { type inet:ipv4-address; }
    }
  }
}
"#;
        std::fs::write(dir.path().join("l3vpn.yang"), package).expect("write");
        let ctx = YangContext::load(dir.path(), &[]).expect("load");
        assert!(ctx.warnings().is_empty(), "warnings: {:?}", ctx.warnings());

        let config = r#"<devices xmlns="http://tail-f.com/ns/ncs">
                          <device><name>pe1</name><address>10.0.0.1</address><port>830</port>
                            <authgroup>default</authgroup><config/></device>
                          <device-group><name>pes</name><device-name>pe1</device-name></device-group>
                        </devices>
                        <services xmlns="http://tail-f.com/ns/ncs">
                          <l3vpn xmlns="http://example.com/l3vpn">
                            <name>v1</name><device>pe1</device><group>pes</group>
                            <address>192.0.2.1</address>
                          </l3vpn>
                        </services>"#;
        parse(&ctx, config).expect("valid service config");
        let dangling = config.replace("<device>pe1</device>", "<device>pe9</device>");
        assert!(
            parse(&ctx, &dangling).is_err(),
            "leafref to a missing device accepted"
        );

        // Service bookkeeping and alarms are operational data kept by the server.
        let state = r#"<services xmlns="http://tail-f.com/ns/ncs">
                         <l3vpn xmlns="http://example.com/l3vpn"><name>v1</name>
                           <modified><devices>pe1</devices></modified>
                           <private><property-list>
                             <property><name>k</name><value>v</value></property>
                           </property-list></private>
                         </l3vpn>
                       </services>
                       <alarms xmlns="http://tail-f.com/ns/ncs-alarms"
                               xmlns:al="http://tail-f.com/ns/ncs-alarms"
                               xmlns:ncs="http://tail-f.com/ns/ncs"
                               xmlns:l3vpn="http://example.com/l3vpn"><alarm-list>
                         <number-of-alarms>1</number-of-alarms>
                         <alarm>
                           <device>ncs</device>
                           <type>al:package-operation-failure</type>
                           <managed-object>/ncs:services/l3vpn:l3vpn[l3vpn:name='v1']</managed-object>
                           <specific-problem/>
                           <is-cleared>false</is-cleared>
                           <last-perceived-severity>critical</last-perceived-severity>
                           <status-change>
                             <event-time>2024-05-13T10:11:12.345+00:00</event-time>
                             <perceived-severity>critical</perceived-severity>
                             <alarm-text>Assigning to self is not thread safe</alarm-text>
                           </status-change>
                         </alarm>
                       </alarm-list></alarms>"#;
        let parse_state = |xml: &str| {
            DataTree::parse_string(
                ctx.context(),
                xml,
                DataFormat::XML,
                DataParserFlags::STRICT | DataParserFlags::NO_VALIDATION,
                DataValidationFlags::empty(),
            )
        };
        let tree = parse_state(state).expect("valid operational data");
        let alarm =
            crate::datastore::find_xpath(&tree, "/tailf-ncs-alarms:alarms/alarm-list/alarm")
                .expect("xpath")
                .into_iter()
                .next()
                .expect("one alarm");
        let managed_object = alarm
            .children()
            .find(|n| n.schema().name() == "managed-object")
            .and_then(|n| n.value_canonical());
        // Stored as an instance-identifier (JSON-style canonical form), not as a plain string.
        assert_eq!(
            managed_object.as_deref(),
            Some("/tailf-ncs:services/l3vpn:l3vpn[name='v1']")
        );
        let bad = state.replace(
            "<last-perceived-severity>critical",
            "<last-perceived-severity>fatal",
        );
        assert!(parse_state(&bad).is_err(), "bad severity accepted");

        for path in [
            "/tailf-ncs:python-vm/stop",
            "/tailf-ncs:python-vm/start",
            "/tailf-ncs:packages/reload",
            "/tailf-ncs:packages/package/oper-status/error-info",
            "/tailf-ncs-alarms:alarms/control/filter-level",
        ] {
            assert!(ctx.context().find_path(path).is_ok(), "{path}");
        }
    }

    #[test]
    fn broken_module_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("good.yang"),
            "module good { namespace urn:good; prefix g; leaf x { type string; } }",
        )
        .expect("write");
        std::fs::write(
            dir.path().join("broken@2024-01-01.yang"),
            "module broken {\n  namespace urn:broken;\n  prefix b;\n  leaf x { type no-such-type; }\n}\n",
        )
        .expect("write");
        match YangContext::load(dir.path(), &[]) {
            Err(YangError::Load { file, message }) => {
                assert!(file.ends_with("broken@2024-01-01.yang"), "{file:?}");
                assert!(message.contains("no-such-type"), "{message}");
                let text = YangError::Load { file, message }.to_string();
                assert!(text.contains("broken@2024-01-01.yang"), "{text}");
            }
            Err(e) => panic!("wrong error: {e}"),
            Ok(_) => panic!("broken module loaded"),
        }
    }

    #[test]
    fn not_a_module_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("notes.yang"), "// hello\ncontainer x {}\n").expect("write");
        match YangContext::load(dir.path(), &[]) {
            Err(YangError::NotYang { file, reason }) => {
                assert!(file.ends_with("notes.yang"));
                assert!(reason.contains("container"), "{reason}");
            }
            other => panic!("expected NotYang, got {other:?}"),
        }
    }

    #[test]
    fn unknown_feature_is_an_error() {
        let err = YangContext::load(&repo_yang_dir(), &[("ietf-netconf", &["no-such-feature"])])
            .expect_err("unknown feature");
        assert!(err.to_string().contains("no-such-feature"), "{err}");
        let err = YangContext::load(&repo_yang_dir(), &[("no-such-module", &["x"])])
            .expect_err("unknown module");
        assert!(matches!(err, YangError::Features { .. }), "{err}");
    }

    #[test]
    fn submodules_and_duplicates_of_builtin_modules() {
        let dir = tempfile::tempdir().expect("tempdir");
        let main = "/* main */ module main {\n  yang-version 1.1;\n  namespace \"urn:main\";\n  prefix m;\n  include main-sub;\n  revision 2024-02-02;\n  feature extra;\n}\n";
        let sub = "// the submodule\nsubmodule \"main-sub\" {\n  yang-version 1.1;\n  belongs-to main { prefix m; }\n  revision 2024-02-01;\n  container c { leaf l { type string; } leaf gone { type string; } }\n}\n";
        let deviation = "module main-dev {\n  namespace urn:main-dev;\n  prefix md;\n  import main { prefix m; }\n  deviation /m:c/m:gone { deviate not-supported; }\n}\n";
        std::fs::write(dir.path().join("main.yang"), main).expect("write");
        std::fs::write(dir.path().join("main-sub@2024-02-01.yang"), sub).expect("write");
        std::fs::write(dir.path().join("main-dev.yang"), deviation).expect("write");

        // The same module and revision as a libyang built-in one must not be an error.
        let builtin = load_repo()
            .schema_text("ietf-yang-library", Some("2019-01-04"))
            .expect("built-in module text");
        assert!(builtin.starts_with("module ietf-yang-library"), "{builtin}");
        std::fs::write(
            dir.path().join("ietf-yang-library@2019-01-04.yang"),
            &builtin,
        )
        .expect("write");
        // A built-in module that libyang only imports becomes implemented, and advertised, when
        // the directory has it.
        let types = load_repo()
            .schema_text("ietf-yang-types", None)
            .expect("built-in module text");
        let types_file = dir.path().join("ietf-yang-types.yang");
        std::fs::write(&types_file, &types).expect("write");

        let ctx = YangContext::load(dir.path(), &[("main", &["extra"])]).expect("load");
        let modules = ctx.modules();
        let main_info = module(&modules, "main");
        assert_eq!(main_info.features, ["extra"]);
        assert_eq!(main_info.deviations, ["main-dev"]);
        assert_eq!(
            main_info.capability(),
            "urn:main?module=main&revision=2024-02-02&features=extra&deviations=main-dev"
        );
        assert_eq!(main_info.submodules.len(), 1);
        assert_eq!(main_info.submodules[0].name, "main-sub");
        assert_eq!(
            main_info.submodules[0].revision.as_deref(),
            Some("2024-02-01")
        );
        assert_eq!(
            main_info.submodules[0].source.as_deref(),
            Some(ctx.dir().join("main-sub@2024-02-01.yang").as_path())
        );
        assert!(modules.iter().all(|m| m.name != "main-sub"));
        assert!(ctx.context().find_path("/main:c/l").is_ok());
        assert!(ctx.context().find_path("/main:c/gone").is_err());
        assert_eq!(module_namespace("main").as_deref(), Some("urn:main"));
        assert_eq!(module_namespace("no-such-module"), None);
        assert!(!raw_context(ctx.context()).is_null());

        assert_eq!(ctx.schema_text("main", None).as_deref(), Some(main));
        assert_eq!(
            ctx.schema_text("main", Some("2024-02-02")).as_deref(),
            Some(main)
        );
        assert_eq!(ctx.schema_text("main", Some("1999-01-01")), None);
        assert_eq!(ctx.schema_text("main-sub", None).as_deref(), Some(sub));
        assert_eq!(
            ctx.schema_text("main-sub", Some("2024-02-01")).as_deref(),
            Some(sub)
        );
        assert_eq!(ctx.schema_text("no\0such", None), None);
        assert_eq!(
            ctx.schema_text("ietf-yang-library", None).as_deref(),
            Some(builtin.as_str())
        );
        let yang_types = module(&modules, "ietf-yang-types");
        assert!(yang_types.implemented);
        assert_eq!(
            yang_types.source.as_deref(),
            Some(ctx.dir().join("ietf-yang-types.yang").as_path())
        );
        assert!(
            ctx.imported_modules()
                .iter()
                .all(|m| m.name != "ietf-yang-types")
        );
        let library = module(&modules, "ietf-yang-library");
        assert_eq!(
            library.source.as_deref(),
            Some(
                ctx.dir()
                    .join("ietf-yang-library@2019-01-04.yang")
                    .as_path()
            )
        );
    }

    #[test]
    fn package_yang_loads_and_a_broken_package_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let write = |package: &str, file: &str, text: &str| {
            let path = dir.path().join(package).join(file);
            std::fs::write(&path, text).unwrap();
            path
        };
        for p in ["good", "broken", "user"] {
            std::fs::create_dir(dir.path().join(p)).unwrap();
        }
        let good = write(
            "good",
            "good.yang",
            "module good { namespace urn:good; prefix g; import tailf-common { prefix tailf; } \
             include good-sub; container c { tailf:info x; tailf:future-thing y; } }",
        );
        let sub = write(
            "good",
            "good-sub.yang",
            "submodule good-sub { belongs-to good { prefix g; } \
             import tailf-common { prefix tailf; } \
             grouping acts { tailf:action go { tailf:actionpoint go-point; \
               input { leaf n { type uint8; } } output { leaf r { type string; } } } } \
             container d { uses acts; } }",
        );
        let broken = write(
            "broken",
            "broken.yang",
            "module broken { namespace urn:broken; prefix b; leaf x { type no-such-type; } }",
        );
        let user = write(
            "user",
            "user.yang",
            "module user { namespace urn:user; prefix u; import good { prefix g; } \
             leaf y { type string; } }",
        );
        let packages = [
            PackageYang {
                package: "good".into(),
                files: vec![good, sub],
            },
            PackageYang {
                package: "broken".into(),
                files: vec![broken],
            },
            PackageYang {
                package: "user".into(),
                files: vec![user],
            },
        ];
        let (yang, failed) =
            YangContext::load_with_packages(&repo_yang_dir(), &packages, NETCONF_FEATURES).unwrap();
        assert_eq!(failed.keys().collect::<Vec<_>>(), ["broken"]);
        assert!(failed["broken"].contains("no-such-type"), "{failed:?}");
        let modules = yang.modules();
        assert_eq!(module(&modules, "good").yang_version, "1.1");
        assert!(module(&modules, "user").implemented);
        // The tailf:action of the submodule is a real action, with its actionpoint.
        let action = yang
            .context()
            .find_path("/good:d/go")
            .expect("the tailf:action compiled as an action");
        assert_eq!(action.kind(), yang5::schema::SchemaNodeKind::Action);
        assert_eq!(
            crate::runtime::actionpoint(&action).as_deref(),
            Some("go-point")
        );
        // get-schema serves the files as written.
        assert!(
            yang.schema_text("good-sub", None)
                .unwrap()
                .contains("tailf:action go")
        );
        assert!(
            yang.schema_text("good", None)
                .unwrap()
                .contains("future-thing")
        );
    }

    #[test]
    fn capability_format() {
        let mut info = ModuleInfo {
            name: "m".to_owned(),
            revision: None,
            namespace: "urn:x:m".to_owned(),
            prefix: "m".to_owned(),
            yang_version: "1",
            implemented: true,
            features: Vec::new(),
            deviations: Vec::new(),
            submodules: Vec::new(),
            source: None,
        };
        assert_eq!(info.capability(), "urn:x:m?module=m");
        info.revision = Some("2020-01-01".to_owned());
        assert_eq!(info.capability(), "urn:x:m?module=m&revision=2020-01-01");
        info.deviations = vec!["m-dev".to_owned(), "m-dev2".to_owned()];
        assert_eq!(
            info.capability(),
            "urn:x:m?module=m&revision=2020-01-01&deviations=m-dev,m-dev2"
        );
        info.features = vec!["a".to_owned(), "b".to_owned()];
        assert_eq!(
            info.capability(),
            "urn:x:m?module=m&revision=2020-01-01&features=a,b&deviations=m-dev,m-dev2"
        );
    }

    #[test]
    fn first_statement_forms() {
        assert_eq!(
            first_statement("\u{feff}// c\n/* x */ module  a-b {"),
            Ok((SourceKind::Module, "a-b".to_owned()))
        );
        assert_eq!(
            first_statement("submodule 'sub'{"),
            Ok((SourceKind::Submodule, "sub".to_owned()))
        );
        assert!(first_statement("").is_err());
        assert!(first_statement("/* open").is_err());
        assert!(first_statement("module \"x").is_err());
    }
}
