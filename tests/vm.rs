//! Integration tests of the Python VM process (`pyvmd vm`), driven over its socket as the server
//! drives it: packages written to a temporary directory, `Start`, statuses, the log file, log
//! level changes, `Stop`, and the ways a VM ends (end of stream, parent killed, no Python).

use std::io::Read as _;
use std::os::fd::AsRawFd as _;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use pyvmd::vm::protocol::{
    ComponentState, CurrentEntry, FromVm, LogLevel, PROTOCOL_VERSION, SelfAssignMode, ThreadState,
    ToVm, VmComponent, VmPackage, VmStart, read_message, write_message,
};

/// How long any single expected event may take.
const WAIT: Duration = Duration::from_secs(30);

/// A VM process with its socket; messages from it arrive on a channel (read by a thread, so a
/// test can wait with a timeout without tearing a message in half).
struct TestVm {
    child: Child,
    socket: UnixStream,
    messages: mpsc::Receiver<FromVm>,
}

impl TestVm {
    /// Starts `pyvmd vm` with its end of a socketpair as fd 3 and stdout/stderr into `output`.
    fn spawn(output: &Path, env: &[(&str, &str)]) -> TestVm {
        Self::spawn_command(
            Command::new(env!("CARGO_BIN_EXE_pyvmd")).arg("vm"),
            output,
            env,
        )
    }

    fn spawn_command(command: &mut Command, output: &Path, env: &[(&str, &str)]) -> TestVm {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let fd = theirs.as_raw_fd();
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(output)
            .unwrap();
        command
            .env("PYVMD_VM_FD", "3")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        // SAFETY: only async-signal-safe calls (dup2, fcntl) between fork and exec.
        unsafe {
            command.pre_exec(move || {
                if fd == 3 {
                    // dup2 onto itself keeps FD_CLOEXEC: clear it instead.
                    if libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                } else if libc::dup2(fd, 3) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().unwrap();
        drop(theirs);
        let mut reader = ours.try_clone().unwrap();
        let (tx, messages) = mpsc::channel();
        std::thread::spawn(move || {
            while let Ok(Some(message)) = read_message::<_, FromVm>(&mut reader) {
                if tx.send(message).is_err() {
                    break;
                }
            }
        });
        TestVm {
            child,
            socket: ours,
            messages,
        }
    }

    fn send(&mut self, message: &ToVm) {
        write_message(&mut self.socket, message).unwrap();
    }

    fn recv(&self) -> FromVm {
        self.messages
            .recv_timeout(WAIT)
            .expect("a message from the VM in time")
    }

    /// Receives messages until `Ready`; returns the statuses and the last current list.
    fn until_ready(&self) -> (Vec<FromVm>, Vec<CurrentEntry>) {
        let mut statuses = Vec::new();
        let mut current = Vec::new();
        loop {
            match self.recv() {
                FromVm::Ready => return (statuses, current),
                FromVm::Current { entries } => current = entries,
                m @ FromVm::ComponentStatus { .. } => statuses.push(m),
                FromVm::Fatal { message } => panic!("VM failed: {message}"),
                other => panic!("unexpected {other:?} before ready"),
            }
        }
    }

    /// Waits for the process to exit; its exit code.
    fn wait_exit(&mut self) -> Option<i32> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "the VM did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for TestVm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes `files` (path relative to `root`, content).
fn write_files(root: &Path, files: &[(&str, &str)]) {
    for (path, content) in files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
}

const GOOD_APP: &str = r#"
import logging
import threading

import ncs
from ncs.application import Application, Service
from ncs.dp import Action

import vendored  # from the site dir (a virtualenv's site-packages in real use)


class Svc(Service):
    @Service.create
    def cb_create(self, tctx, root, service, proplist):
        pass


class Act(Action):
    @Action.action
    def cb_action(self, uinfo, name, kp, input, output, trans):
        return ncs.CONFD_OK


class OldAct(Action):
    # The older form without trans: the decorator counts the arguments.
    @Action.action
    def cb_action(self, uinfo, name, kp, input, output):
        return ncs.CONFD_OK


class Main(Application):
    def setup(self):
        self.log.info('Good RUNNING ', 1, ' ', vendored.NAME)
        self.log.debug('Good debug in setup')
        self.register_service('good-servicepoint', Svc)
        self.register_action('good-action', Act)
        self.register_action('good-old-action', OldAct)
        assert Act.cb_action._ncs_takes_trans and not OldAct.cb_action._ncs_takes_trans
        try:
            self.register_service('good-servicepoint', Svc)
        except ValueError:
            pass
        else:
            raise AssertionError('a point registered twice')
        self.stop = threading.Event()
        self.ticker = threading.Thread(target=self.tick, name='Ticker')
        self.ticker.start()
        self.add_running_thread('Ticker')

    def tick(self):
        # Logs at two levels all the time, so the test can watch level changes take effect.
        n = 0
        std = logging.getLogger('good.ticker')
        while not self.stop.wait(0.05):
            n += 1
            self.log.debug('tick debug ', n)
            std.info('tick info %d', n)

    def teardown(self):
        self.stop.set()
        self.ticker.join()
        self.del_running_thread('Ticker')
        self.log.info('Good teardown ran')
"#;

const LEGACY_APP: &str = r#"
from ncs.application import Application


class Legacy(Application):
    def setup(self):
        self.log.info('Legacy RUNNING')
"#;

const BAD_APP: &str = r#"
import ncs


class App(ncs.application.Application):
    def setup(self):
        self.log.info('Bad setup starts')
        raise ValueError('setup exploded')

    def teardown(self):
        self.log.info('Bad teardown ran')
"#;

const BROKEN_APP: &str = r#"
import does_not_exist_module
"#;

/// Writes the test packages; returns the `Start` message for them.
fn packages(root: &Path, vm_name: &str, log_file: PathBuf) -> VmStart {
    write_files(
        root,
        &[
            ("good/python/good/__init__.py", ""),
            ("good/python/good/main.py", GOOD_APP),
            ("good/python/legacy.py", LEGACY_APP),
            ("site/vendored.py", "NAME = 'vendored'\n"),
            ("bad/python/bad/__init__.py", ""),
            ("bad/python/bad/app.py", BAD_APP),
            ("broken/python/broken/__init__.py", ""),
            ("broken/python/broken/app.py", BROKEN_APP),
        ],
    );
    let component = |name: &str, class_name: &str| VmComponent {
        name: name.into(),
        class_name: class_name.into(),
        source: None,
    };
    VmStart {
        protocol: PROTOCOL_VERSION,
        vm_name: vm_name.into(),
        log_file,
        log_level: LogLevel::LevelInfo,
        self_assign: SelfAssignMode::Alarm,
        sys_path: ["good", "bad", "broken"]
            .iter()
            .map(|p| root.join(p).join("python"))
            .collect(),
        site_dirs: vec![root.join("site")],
        packages: vec![
            VmPackage {
                name: "good".into(),
                components: vec![
                    component("main", "good.main.Main"),
                    // A bare class name: the module is named after the component (deprecated).
                    component("legacy", "Legacy"),
                ],
            },
            VmPackage {
                name: "bad".into(),
                components: vec![component("app", "bad.app.App")],
            },
            VmPackage {
                name: "broken".into(),
                components: vec![component("app", "broken.app.App")],
            },
        ],
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Waits until `path` contains a line for which `found` holds.
fn wait_for_line(path: &Path, what: &str, found: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + WAIT;
    while !read(path).lines().any(&found) {
        assert!(
            Instant::now() < deadline,
            "no line with {what} in {}:\n{}",
            path.display(),
            read(path)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Checks NSO's log line format; returns (level, thread, message).
fn parse_line<'a>(line: &'a str, vm: &str) -> (&'a str, &'a str, &'a str) {
    let (level, rest) = line
        .strip_prefix('<')
        .and_then(|l| l.split_once("> "))
        .unwrap_or_else(|| panic!("no <LEVEL>: {line:?}"));
    assert!(
        ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"].contains(&level),
        "{line:?}"
    );
    // DD-Mon-YYYY::HH:MM:SS.mmm
    let (stamp, rest) = rest.split_once(' ').unwrap();
    let b = stamp.as_bytes();
    assert_eq!(stamp.len(), 25, "{line:?}");
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    assert!(digits(0..2) && b[2] == b'-', "{line:?}");
    assert!(
        [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
        ]
        .contains(&&stamp[3..6]),
        "{line:?}"
    );
    assert!(
        b[6] == b'-' && digits(7..11) && &stamp[11..13] == "::",
        "{line:?}"
    );
    assert!(
        digits(13..15) && b[15] == b':' && digits(16..18) && b[18] == b':',
        "{line:?}"
    );
    assert!(
        digits(19..21) && b[21] == b'.' && digits(22..25),
        "{line:?}"
    );
    let rest = rest
        .strip_prefix(vm)
        .and_then(|r| r.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no vm name: {line:?}"));
    let (thread, message) = rest
        .split_once(": - ")
        .unwrap_or_else(|| panic!("no ': - ': {line:?}"));
    (level, thread, message)
}

/// The records of a log file (lines that start a record; tracebacks continue them).
fn records<'a>(text: &'a str, vm: &str) -> Vec<(&'a str, &'a str, &'a str)> {
    text.lines()
        .filter(|l| l.starts_with('<'))
        .map(|l| parse_line(l, vm))
        .collect()
}

fn entry(entries: &[CurrentEntry], package: &str, name: &str) -> Option<ThreadState> {
    entries
        .iter()
        .find(|e| e.package == package && e.class_name == name)
        .map(|e| e.state)
}

#[test]
fn vm_lifecycle_statuses_logging_and_stop() {
    let dir = tempfile::tempdir().unwrap();
    let log_file = dir.path().join("logs/ncs-python-vm-testvm.log");
    let output = dir.path().join("ncs-python-vm.log");
    let start = packages(dir.path(), "testvm", log_file.clone());
    let mut vm = TestVm::spawn(&output, &[]);
    vm.send(&ToVm::Start(start));

    // One status per component, in start order.
    let (statuses, current) = vm.until_ready();
    let summary: Vec<(String, String, ComponentState, Option<String>)> = statuses
        .into_iter()
        .map(|s| match s {
            FromVm::ComponentStatus {
                package,
                component,
                state,
                error_info,
                ..
            } => (package, component, state, error_info),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("good".into(), "main".into(), ComponentState::Started, None),
            (
                "good".into(),
                "legacy".into(),
                ComponentState::Started,
                None
            ),
            (
                "bad".into(),
                "app".into(),
                ComponentState::Failed,
                Some("ValueError: setup exploded".into())
            ),
            (
                "broken".into(),
                "app".into(),
                ComponentState::Failed,
                Some("ModuleNotFoundError: No module named 'does_not_exist_module'".into())
            ),
        ]
    );

    // status/current: live component threads, registered points, the user thread.
    assert_eq!(
        entry(&current, "good", "ComponentThread:main"),
        Some(ThreadState::Running)
    );
    assert_eq!(
        entry(&current, "good", "good-servicepoint (service)"),
        Some(ThreadState::Running)
    );
    assert_eq!(
        entry(&current, "good", "good-action (action)"),
        Some(ThreadState::Running)
    );
    assert_eq!(
        entry(&current, "good", "good-old-action (action)"),
        Some(ThreadState::Running)
    );
    assert_eq!(
        entry(&current, "good", "Ticker"),
        Some(ThreadState::Running)
    );
    assert_eq!(
        entry(&current, "bad", "ComponentThread:app"),
        Some(ThreadState::Finished)
    );
    assert_eq!(
        entry(&current, "broken", "ComponentThread:app"),
        Some(ThreadState::Finished)
    );

    // The log file: NSO's format, INFO and up only, thread names of the writers.
    wait_for_line(&log_file, "tick info", |l| l.contains("tick info"));
    let text = read(&log_file);
    let lines = records(&text, "testvm");
    let has = |level: &str, thread: &str, message: &str| {
        lines
            .iter()
            .any(|(l, t, m)| *l == level && *t == thread && m.contains(message))
    };
    assert!(
        has("INFO", "ComponentThread:main", "Good RUNNING 1 vendored"),
        "{text}"
    );
    assert!(
        has("INFO", "ComponentThread:legacy", "Legacy RUNNING"),
        "{text}"
    );
    assert!(
        has("WARNING", "ComponentThread:legacy", "deprecated"),
        "{text}"
    );
    assert!(has("INFO", "Ticker", "tick info"), "{text}");
    assert!(
        has("ERROR", "ComponentThread:app", "ValueError: setup exploded"),
        "{text}"
    );
    // teardown() runs after a failed setup().
    assert!(
        has("INFO", "ComponentThread:app", "Bad teardown ran"),
        "{text}"
    );
    assert!(
        has("ERROR", "ComponentThread:app", "does_not_exist_module"),
        "{text}"
    );
    assert!(
        lines.iter().all(|(level, _, _)| *level != "DEBUG"),
        "DEBUG lines at level-info:\n{text}"
    );
    // Tracebacks of failed components are printed to stderr (the shared VM log).
    let out = read(&output);
    assert!(out.contains("Traceback (most recent call last)"), "{out}");
    assert!(
        out.contains("ModuleNotFoundError: No module named 'does_not_exist_module'"),
        "{out}"
    );
    assert!(out.contains("ValueError: setup exploded"), "{out}");

    // A level change applies at once, to ncs.log.Log and to plain logging.
    vm.send(&ToVm::SetLogLevel {
        level: LogLevel::LevelDebug,
    });
    wait_for_line(&log_file, "a DEBUG tick", |l| {
        l.starts_with("<DEBUG> ") && l.contains(" testvm Ticker: - tick debug ")
    });

    // level-off: nothing at all is written.
    vm.send(&ToVm::SetLogLevel {
        level: LogLevel::LevelOff,
    });
    std::thread::sleep(Duration::from_millis(300)); // the message is applied asynchronously
    let before = read(&log_file).len();
    std::thread::sleep(Duration::from_millis(400)); // eight ticks
    assert_eq!(read(&log_file).len(), before, "lines written at level-off");

    vm.send(&ToVm::SetSelfAssign {
        mode: SelfAssignMode::Log,
    });
    vm.send(&ToVm::SetLogLevel {
        level: LogLevel::LevelInfo,
    });
    vm.send(&ToVm::Stop);
    let mut last_current = current;
    loop {
        match vm.recv() {
            FromVm::Stopped => break,
            FromVm::Current { entries } => last_current = entries,
            other => panic!("unexpected {other:?} while stopping"),
        }
    }
    assert_eq!(vm.wait_exit(), Some(0));

    // teardown() ran, deregistered the points and the user thread, and the thread finished.
    let text = read(&log_file);
    let lines = records(&text, "testvm");
    assert!(
        lines.iter().any(|(l, t, m)| *l == "INFO"
            && *t == "ComponentThread:main"
            && *m == "Good teardown ran"),
        "{text}"
    );
    assert_eq!(
        entry(&last_current, "good", "ComponentThread:main"),
        Some(ThreadState::Finished),
        "{last_current:?}\n{text}\n{}",
        read(&output)
    );
    assert_eq!(
        entry(&last_current, "good", "good-servicepoint (service)"),
        None
    );
    assert_eq!(entry(&last_current, "good", "Ticker"), None);
}

/// A VM with one trivial component, started and ready.
fn ready_vm(dir: &Path, command: Option<&mut Command>) -> TestVm {
    write_files(
        dir,
        &[(
            "p/python/p.py",
            "from ncs.application import Application\nclass App(Application):\n    pass\n",
        )],
    );
    let output = dir.join("out.log");
    let mut vm = match command {
        Some(command) => TestVm::spawn_command(command, &output, &[]),
        None => TestVm::spawn(&output, &[]),
    };
    vm.send(&ToVm::Start(VmStart {
        protocol: PROTOCOL_VERSION,
        vm_name: "p".into(),
        log_file: dir.join("p.log"),
        log_level: LogLevel::LevelInfo,
        self_assign: SelfAssignMode::Alarm,
        sys_path: vec![dir.join("p/python")],
        site_dirs: vec![],
        packages: vec![VmPackage {
            name: "p".into(),
            components: vec![VmComponent {
                name: "c".into(),
                class_name: "p.App".into(),
                source: None,
            }],
        }],
    }));
    vm
}

#[test]
fn vm_exits_when_the_server_closes_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let mut vm = ready_vm(dir.path(), None);
    vm.until_ready();
    vm.socket.shutdown(std::net::Shutdown::Both).unwrap();
    assert_eq!(vm.wait_exit(), Some(0));
}

#[test]
fn vm_dies_with_its_parent() {
    let dir = tempfile::tempdir().unwrap();
    // A shell stands for the server: it starts the VM in the background, prints its pid and
    // waits. Killing the shell must kill the VM (PR_SET_PDEATHSIG), although the VM's socket
    // stays open (this test holds the other end), so no end of stream tells it.
    let mut shell = Command::new("sh");
    shell.arg("-c").arg(format!(
        "'{}' vm & echo $! > '{}'; wait",
        env!("CARGO_BIN_EXE_pyvmd"),
        dir.path().join("pid").display()
    ));
    let mut vm = ready_vm(dir.path(), Some(&mut shell));
    vm.until_ready();
    let pid: i32 = read(&dir.path().join("pid")).trim().parse().unwrap();
    assert!(alive(pid), "the VM runs");
    vm.child.kill().unwrap();
    vm.child.wait().unwrap();
    let deadline = Instant::now() + WAIT;
    while alive(pid) {
        assert!(Instant::now() < deadline, "the VM outlived its parent");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a process exists and is not a zombie (a dead VM may wait for its new parent to reap
/// it).
fn alive(pid: i32) -> bool {
    let mut stat = String::new();
    match std::fs::File::open(format!("/proc/{pid}/stat")) {
        Ok(mut f) => {
            let _ = f.read_to_string(&mut stat);
        }
        Err(_) => return false,
    }
    // pid (comm) state ...: the state follows the last ')'.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .is_some_and(|state| state != "Z" && state != "X")
}

#[test]
fn vm_refuses_another_protocol_version() {
    let dir = tempfile::tempdir().unwrap();
    let mut vm = TestVm::spawn(&dir.path().join("out.log"), &[]);
    let mut start = packages(dir.path(), "v", dir.path().join("v.log"));
    start.protocol = PROTOCOL_VERSION + 1;
    vm.send(&ToVm::Start(start));
    match vm.recv() {
        FromVm::Fatal { message } => assert!(message.contains("protocol version"), "{message}"),
        other => panic!("expected fatal, got {other:?}"),
    }
    assert_eq!(vm.wait_exit(), Some(pyvmd::vm::EXIT_SETUP));
}

#[test]
fn vm_reports_a_python_that_cannot_start() {
    let dir = tempfile::tempdir().unwrap();
    // A PYTHONHOME without a standard library: CPython cannot initialise.
    let mut vm = TestVm::spawn(
        &dir.path().join("out.log"),
        &[("PYTHONHOME", "/nonexistent-python-home")],
    );
    vm.send(&ToVm::Start(packages(
        dir.path(),
        "v",
        dir.path().join("v.log"),
    )));
    match vm.recv() {
        FromVm::Fatal { message } => {
            assert!(message.starts_with("no usable Python: "), "{message}")
        }
        other => panic!("expected fatal, got {other:?}"),
    }
    assert_eq!(vm.wait_exit(), Some(pyvmd::vm::EXIT_NO_PYTHON));
    assert!(read(&dir.path().join("v.log")).contains("<CRITICAL> "));
}
