//! The package author's tools with the real binary: `new-package` skeletons that check clean,
//! lint clean, load, run and pass their own tests against a server; `check-packages` finding a
//! broken metadata file, a YANG error and Python import errors with file and line; and extra
//! YANG modules by name from a module path (`NETCONF_MODULES`, as in the yuma123 image).
//!
//! The skeletons' own tests are ncclient scripts and the lint is pyang: without python3 with
//! ncclient, or without pyang, those parts print a loud notice and are left out, except under
//! CI (`CI=true`), where that is a failure. `.ci/run` installs both.

mod common;
use common::{ci, free_port};

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const KINDS: &[(&str, &str)] = &[
    ("plain", ""),
    ("my-svc", "--service"),
    ("my-act", "--action"),
    ("my-src", "--notification-source"),
];

fn pyvmd(cwd: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pyvmd"));
    command
        .current_dir(cwd)
        .args(args)
        .env_remove("NETCONF_MODULES")
        .env_remove("NETCONF_MODULE_PATH")
        .env_remove("NETCONF_PORT")
        .stdin(Stdio::null());
    command
}

fn output(mut command: Command) -> (Output, String) {
    let out = command.output().expect("pyvmd runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

/// Whether an optional tool is there; without it, a notice (or, under CI, a failure).
fn have(what: &str, probe: &mut Command) -> bool {
    let ok = probe
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(!ci(), "CI=true and {what} is missing");
        let _ = writeln!(
            std::io::stderr(),
            "\n{bar}\nSKIPPED part of the package tools test: {what} is missing\n{bar}\n",
            bar = "!".repeat(78)
        );
    }
    ok
}

/// A `pyvmd serve` that is stopped (SIGTERM) when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(cwd: &Path, mut command: Command) -> Server {
        let port = free_port();
        let child = command
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pyvmd serve starts");
        let server = Server { child, port };
        // `pyvmd health` is what scripts wait with.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (out, text) = output(pyvmd(cwd, &["health", "--port", &port.to_string()]));
            if out.status.success() {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "the server never answered: {text}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

/// Writes one package of each kind into `<dir>/packages`.
fn new_packages(dir: &Path) {
    for (name, flag) in KINDS {
        let mut args = vec!["new-package", *name];
        if !flag.is_empty() {
            args.push(flag);
        }
        let (out, text) = output(pyvmd(dir, &args));
        assert!(out.status.success(), "new-package {name}: {text}");
        assert!(
            text.contains(&format!("packages/{name}/package-meta-data.xml")),
            "{text}"
        );
    }
    let (out, text) = output(pyvmd(dir, &["new-package", "plain"]));
    assert!(
        !out.status.success() && text.contains("exists already"),
        "{text}"
    );
}

#[test]
fn skeletons_check_lint_run_and_pass_their_tests() {
    let dir = tempfile::tempdir().unwrap();
    new_packages(dir.path());

    let (out, text) = output(pyvmd(dir.path(), &["check-packages", "packages"]));
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("4 package(s) in packages: 4 ok, 0 with problems"),
        "{text}"
    );

    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    if have("pyang", Command::new("pyang").arg("--version")) {
        for (name, _) in KINDS {
            let file = dir
                .path()
                .join(format!("packages/{name}/src/yang/{name}.yang"));
            let mut lint = Command::new("pyang");
            lint.arg("--strict")
                .arg("-p")
                .arg(repo.join("yang"))
                .arg("-p")
                .arg(repo.join("yang/imports"))
                .arg(&file);
            let (out, text) = output(lint);
            // Only what pyang says about the generated module (not the modules it imports).
            let ours: Vec<&str> = text
                .lines()
                .filter(|l| l.starts_with(&*file.to_string_lossy()))
                .collect();
            assert!(
                out.status.success() && ours.is_empty(),
                "pyang --strict: {text}"
            );
        }
    }

    let server = Server::start(dir.path(), pyvmd(dir.path(), &["serve"]));
    if have(
        "python3 with ncclient",
        Command::new("python3").args(["-c", "import ncclient"]),
    ) {
        for (name, _) in KINDS {
            let (out, text) = output({
                let mut test = Command::new("python3");
                test.current_dir(dir.path())
                    .args(["-m", "unittest", "discover", "-s"])
                    .arg(format!("packages/{name}/test"))
                    .arg("-v")
                    .env("NETCONF_PORT", server.port.to_string())
                    .env("PYTHONDONTWRITEBYTECODE", "1");
                test
            });
            assert!(out.status.success(), "the tests of {name} failed:\n{text}");
        }
    }
}

/// Replaces `from` with `to` in `file`, which must contain it.
fn edit(file: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).unwrap();
    assert!(text.contains(from), "{} has no {from:?}", file.display());
    std::fs::write(file, text.replacen(from, to, 1)).unwrap();
}

/// The line of `stdout` that starts with `file:`, if any.
fn finding<'a>(text: &'a str, file: &Path) -> &'a str {
    let prefix = format!("{}:", file.display());
    text.lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no finding for {}:\n{text}", file.display()))
}

#[test]
fn check_packages_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for (name, flag) in [
        ("bad-meta", ""),
        ("bad-yang", "--action"),
        ("bad-import", ""),
        ("bad-class", ""),
        ("bad-syntax", ""),
        ("needs-bad", ""),
        ("good", "--service"),
    ] {
        let mut args = vec!["new-package", name];
        if !flag.is_empty() {
            args.push(flag);
        }
        assert!(output(pyvmd(root, &args)).0.status.success());
    }
    let p = |path: &str| root.join("packages").join(path);
    edit(
        &p("bad-meta/package-meta-data.xml"),
        "</description>",
        "</descr>",
    );
    edit(
        &p("bad-yang/src/yang/bad-yang.yang"),
        "type int32;",
        "type int33;",
    );
    edit(
        &p("bad-import/python/bad_import/main.py"),
        "from ncs.application",
        "import no_such_module\nfrom ncs.application",
    );
    edit(
        &p("bad-class/python/bad_class/main.py"),
        "class Main(",
        "class Mian(",
    );
    edit(
        &p("bad-syntax/python/bad_syntax/main.py"),
        "def setup(self):",
        "def setup(self)",
    );
    edit(
        &p("needs-bad/package-meta-data.xml"),
        "  <component>",
        "  <required-package><name>bad-yang</name></required-package>\n  <component>",
    );

    let (out, text) = output(pyvmd(root, &["check-packages", "packages"]));
    assert_eq!(out.status.code(), Some(1), "{text}");
    let files = |path: &str| PathBuf::from("packages").join(path);

    let meta = finding(&text, &files("bad-meta/package-meta-data.xml"));
    assert!(
        meta.contains("xml:5:") && meta.contains("not well-formed XML"),
        "{meta}"
    );
    let yang = finding(&text, &files("bad-yang/src/yang/bad-yang.yang"));
    assert!(
        yang.contains(".yang:27:") && yang.contains("int33"),
        "{yang}"
    );
    // The import error is at line 3 of main.py (the inserted import).
    let import = finding(&text, &files("bad-import/python/bad_import/main.py"));
    assert!(
        import.contains("main.py:3:") && import.contains("no_such_module"),
        "{import}"
    );
    let class = finding(&text, &files("bad-class/python/bad_class/main.py"));
    assert!(class.contains("has no class 'Main'"), "{class}");
    let syntax = finding(&text, &files("bad-syntax/python/bad_syntax/main.py"));
    assert!(
        syntax.contains("main.py:9:") && syntax.contains("SyntaxError"),
        "{syntax}"
    );
    let needs = finding(&text, &files("needs-bad/package-meta-data.xml"));
    assert!(
        needs.contains("missing-dependency") && needs.contains("bad-yang"),
        "{needs}"
    );
    assert!(text.contains("ok: good 1.0"), "{text}");
    assert!(
        text.contains("7 package(s) in packages: 1 ok, 6 with problems"),
        "{text}"
    );

    let (out, text) = output(pyvmd(root, &["check-packages", "no-such-dir"]));
    assert!(
        !out.status.success() && text.contains("is not a directory"),
        "{text}"
    );
}

#[tokio::test]
async fn extra_modules_by_name_from_the_module_path() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let modules = dir.path().join("yang");
    std::fs::create_dir_all(modules.join("deeper")).unwrap();
    std::fs::copy(
        repo.join("docker/lab/yang/lab-extra.yang"),
        modules.join("deeper/lab-extra@2026-12-01.yang"),
    )
    .unwrap();

    let mut command = pyvmd(dir.path(), &["serve"]);
    command
        .env("NETCONF_MODULES", "lab-extra")
        .env("NETCONF_MODULE_PATH", &modules);
    let server = Server::start(dir.path(), command);
    let addr = format!("127.0.0.1:{}", server.port).parse().unwrap();
    let mut client = pyvmd::client::NetconfClient::connect(addr, "admin", "admin")
        .await
        .unwrap();
    assert!(
        client
            .capabilities
            .iter()
            .any(|c| c.starts_with("http://example.com/pyvmd/lab-extra?module=lab-extra")),
        "{:?}",
        client.capabilities
    );
    let reply = client
        .rpc(
            "<edit-config><target><running/></target><config><lab \
             xmlns=\"http://example.com/pyvmd/lab-extra\"><motd>hi</motd></lab></config>\
             </edit-config>",
        )
        .await
        .unwrap();
    assert!(reply.contains("<ok/>"), "{reply}");
    drop(server);

    // A name that is nowhere: the server does not start, and says where it looked.
    let mut command = pyvmd(dir.path(), &["serve", "--listen", "127.0.0.1:0"]);
    command
        .env("NETCONF_MODULES", "lab-extra, no-such-module")
        .env("NETCONF_MODULE_PATH", &modules);
    let (out, text) = output(command);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("\"no-such-module\" is not in the module path")
            && text.contains(&*modules.to_string_lossy()),
        "{text}"
    );
}
