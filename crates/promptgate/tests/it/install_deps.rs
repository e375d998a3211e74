//! `scripts/install-deps`, which the README's test command and `.ci/run` run first: on a machine
//! that lacks the test command's programs it must name every missing Debian package and the
//! exact command that installs them, and stop before anything is built.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository's root (two levels above this crate).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root")
}

/// A directory holding only the basic tools the script itself uses, so that every program the
/// tests need (PostgreSQL, promtool, python3, c++, node, npm, curl, apt-get) is missing.
fn bare_path() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    for tool in ["bash", "dirname", "id", "sed", "ls", "sort", "tail", "cat"] {
        let found = ["/usr/bin", "/bin"]
            .iter()
            .map(|d| Path::new(d).join(tool))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("{tool} not found in /usr/bin or /bin"));
        std::os::unix::fs::symlink(found, dir.path().join(tool)).expect("a symlink");
    }
    dir
}

/// Regression test for issue 17, item 20: the README's test command needed python3-venv, a C++
/// compiler, Node.js with npm and Chromium that only `.ci/run` installed.
#[test]
fn install_deps_names_every_missing_package_and_the_command() {
    let bin = bare_path();
    let output = Command::new(bin.path().join("bash"))
        .arg(repo_root().join("scripts/install-deps"))
        .env_clear()
        .env("PATH", bin.path())
        .env("CONSOLE_TEST_CHROMIUM", "/nonexistent/chromium")
        .output()
        .expect("scripts/install-deps runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr:\n{stderr}");
    // Without apt-get on the PATH it cannot install, root or not: it prints the command.
    let command_line = stderr
        .lines()
        .find(|l| l.contains("apt-get install"))
        .unwrap_or_else(|| panic!("no apt-get command in:\n{stderr}"));
    for package in [
        "prometheus",
        "curl",
        "python3-venv",
        "g++",
        "nodejs",
        "npm",
        "chromium",
    ] {
        assert!(
            command_line.split_whitespace().any(|word| word == package),
            "{package} missing from the command: {command_line}"
        );
    }
    // PostgreSQL's server programs, unless the machine has them under /usr/lib/postgresql (which
    // the script also looks at, whatever the PATH).
    let has_packaged_postgres = std::fs::read_dir("/usr/lib/postgresql")
        .map(|mut d| d.next().is_some())
        .unwrap_or(false);
    if !has_packaged_postgres {
        assert!(
            command_line.split_whitespace().any(|w| w == "postgresql"),
            "postgresql missing from the command: {command_line}"
        );
    }
}

/// `--quick` (the two cargo runs only) asks for the database and promtool, not the browser and
/// SDK tools; a test server named by URL needs no PostgreSQL programs.
#[test]
fn install_deps_quick_needs_only_what_the_cargo_runs_use() {
    let bin = bare_path();
    let output = Command::new(bin.path().join("bash"))
        .arg(repo_root().join("scripts/install-deps"))
        .arg("--quick")
        .env_clear()
        .env("PATH", bin.path())
        .env("PROMPTGATE_TEST_POSTGRES_URL", "postgres://127.0.0.1:1/x")
        .output()
        .expect("scripts/install-deps runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr:\n{stderr}");
    let command_line = stderr
        .lines()
        .find(|l| l.contains("apt-get install"))
        .unwrap_or_else(|| panic!("no apt-get command in:\n{stderr}"));
    let packages: Vec<&str> = command_line
        .split_whitespace()
        .skip_while(|w| *w != "--no-install-recommends")
        .skip(1)
        .collect();
    assert_eq!(packages, ["prometheus"], "{command_line}");
}
