//! The fuzz targets of `fuzz/` run for a short, bounded time each: what a client or a package
//! can hand the parsers (framing, the `<rpc>` envelope, edit-config, filters, keypaths,
//! `package-meta-data.xml`) must never crash them. `docs/fuzzing.md` tells how to run them
//! longer and what was found so far.
//!
//! Each target starts from its seed corpus (`fuzz/seeds/<target>/`, in the repository) and
//! writes what it discovers to a scratch directory, so that a run leaves the repository as it
//! was. A crash fails the test with libFuzzer's report, which names the input it saved under
//! `fuzz/artifacts/`.
//!
//! cargo-fuzz is a cargo subcommand, not a dependency: without it the test prints a loud notice
//! and passes, except under CI (`CI=true`), where that is a failure. `.ci/run` installs it.
//! libFuzzer needs nightly compiler flags; `RUSTC_BOOTSTRAP=1` lets the stable toolchain take
//! them. `PYVMD_FUZZ_SECONDS` sets the time per target (15 by default).

mod common;
use common::ci;

use std::path::Path;
use std::process::Command;

const TARGETS: &[&str] = &[
    "framing",
    "rpc_envelope",
    "edit_config",
    "filters",
    "keypath",
    "package_meta_data",
];

fn cargo_fuzz() -> Command {
    let mut command = Command::new(env!("CARGO"));
    command
        .arg("fuzz")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RUSTC_BOOTSTRAP", "1")
        // The flags of the test build must not leak into the fuzz build.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR");
    command
}

#[test]
fn every_fuzz_target_survives_its_time() {
    let installed = Command::new(env!("CARGO"))
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        let notice = "cargo-fuzz is not installed (cargo install cargo-fuzz): the fuzz targets \
                      did not run";
        assert!(!ci(), "CI=true and {notice}");
        eprintln!("\n*** NOTICE: {notice} ***\n");
        return;
    }
    let seconds: u64 = std::env::var("PYVMD_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    let build = cargo_fuzz()
        .arg("build")
        .output()
        .expect("cargo fuzz build runs");
    assert!(
        build.status.success(),
        "cargo fuzz build failed:\n{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let mut failures = Vec::new();
    for target in TARGETS {
        let target_seeds = seeds.join(target);
        assert!(
            target_seeds.is_dir(),
            "{target} has no seeds in {}",
            target_seeds.display()
        );
        let corpus = scratch.path().join(target);
        std::fs::create_dir_all(&corpus).expect("a corpus directory");
        let run = cargo_fuzz()
            .args(["run", target])
            .arg(&corpus)
            .arg(&target_seeds)
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .output()
            .expect("cargo fuzz run runs");
        let report = String::from_utf8_lossy(&run.stderr);
        let summary = report
            .lines()
            .rev()
            .find(|l| l.starts_with("Done "))
            .unwrap_or("no summary");
        eprintln!("fuzz target {target}: {summary}");
        if !run.status.success() {
            let tail: Vec<&str> = report.lines().rev().take(60).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            failures.push(format!("{target}:\n{}", tail.join("\n")));
        }
    }
    assert!(
        failures.is_empty(),
        "fuzz targets failed:\n{}",
        failures.join("\n\n")
    );
}
