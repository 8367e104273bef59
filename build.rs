//! Build-time facts and files.
//!
//! - `WA_SENTINEL_COMMIT` for `--version`: `$WA_SENTINEL_COMMIT` if set (a
//!   packager's override), else `git rev-parse` when this crate is the top of
//!   a git work tree, else `.git-commit` as filled in by `git archive`
//!   (`export-subst` in `.gitattributes`), else `unknown`.
//! - Packaging assets in `<target>/<profile>/pkg/`, which `cargo deb` names as
//!   `target/release/pkg/…` (it cannot name `OUT_DIR`, whose path carries a
//!   hash): the man pages in `man/man1/` (gzip -9n, as Debian policy wants;
//!   `MANPATH=target/debug/pkg/man` finds them) and the bash, zsh
//!   and fish completions, all rendered from the clap definitions in
//!   `src/cli/args.rs`, and `config.toml` with its database under
//!   `/var/lib/wa-sentinel`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

#[allow(dead_code)]
#[path = "src/cli/args.rs"]
mod args;

use clap::CommandFactory;

/// The shipped config's database line, and what the package installs instead.
const DEV_DATABASE: &str = r#"url = "sqlite://data/wa-sentinel.db""#;
const PACKAGED_DATABASE: &str = r#"url = "sqlite:///var/lib/wa-sentinel/wa-sentinel.db""#;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // `migrations`: sqlx::migrate! embeds the files, and a new one must rebuild the crate.
    for f in ["build.rs", "src/cli/args.rs", "config.toml", ".git-commit", "migrations"] {
        println!("cargo:rerun-if-changed={f}");
    }
    println!("cargo:rerun-if-env-changed=WA_SENTINEL_COMMIT");

    let commit = commit(&manifest);
    println!("cargo:rustc-env=WA_SENTINEL_COMMIT={commit}");

    // OUT_DIR is <target>/[<triple>/]<profile>/build/<pkg>-<hash>/out.
    let profile_dir = out.ancestors().nth(3).expect("OUT_DIR is inside the target directory");
    let pkg = profile_dir.join("pkg");
    let version = format!("{} (commit {commit})", std::env::var("CARGO_PKG_VERSION").expect("cargo sets it"));
    // clap takes a &'static str here; this process ends in a moment.
    let cmd = args::Cli::command().version(&*version.leak());
    man_pages(&cmd, &out, &pkg.join("man/man1"));
    completions(cmd, &pkg.join("completions"));
    packaged_config(&manifest.join("config.toml"), &pkg.join("config.toml"));
}

fn commit(manifest: &Path) -> String {
    if let Ok(c) = std::env::var("WA_SENTINEL_COMMIT")
        && !c.trim().is_empty()
    {
        return c.trim().to_string();
    }
    let git = |args: &[&str]| -> Option<String> {
        let o = Command::new("git").args(args).current_dir(manifest).output().ok()?;
        o.status.success().then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    // Only this crate's own repository counts: a tarball unpacked inside some
    // other work tree must not report that tree's commit.
    let top = git(&["rev-parse", "--show-toplevel"]).map(PathBuf::from);
    if top.is_some_and(|t| same_dir(&t, manifest))
        && let Some(c) = git(&["rev-parse", "--short=12", "HEAD"])
    {
        // Rebuild when HEAD moves (a commit, a checkout); only existing
        // files, since a missing one would rerun this script on every build.
        let mut watch = vec!["HEAD".to_string(), "packed-refs".to_string()];
        watch.extend(git(&["symbolic-ref", "-q", "HEAD"]));
        for p in watch.iter().filter_map(|w| git(&["rev-parse", "--git-path", w])) {
            let p = manifest.join(p);
            if p.exists() {
                println!("cargo:rerun-if-changed={}", p.display());
            }
        }
        return c;
    }
    match std::fs::read_to_string(manifest.join(".git-commit")) {
        Ok(s) if !s.trim().is_empty() && !s.contains("$Format") => s.trim().chars().take(12).collect(),
        _ => "unknown".into(),
    }
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// `wa-sentinel.1.gz` and one page per subcommand (`wa-sentinel-run.1.gz`, …).
fn man_pages(cmd: &clap::Command, out: &Path, dest: &Path) {
    let rendered = out.join("man");
    let _ = std::fs::remove_dir_all(&rendered);
    std::fs::create_dir_all(&rendered).expect("create OUT_DIR/man");
    clap_mangen::generate_to(cmd.clone(), &rendered).expect("render man pages");
    std::fs::create_dir_all(dest).expect("create the man page directory");
    for entry in std::fs::read_dir(&rendered).expect("read OUT_DIR/man") {
        let path = entry.expect("list OUT_DIR/man").path();
        let page = std::fs::read(&path).expect("read a rendered man page");
        let name = format!("{}.gz", path.file_name().and_then(|n| n.to_str()).expect("UTF-8 page name"));
        // mtime 0 and no file name in the header: the same bytes on every build.
        let mut gz = flate2::GzBuilder::new().mtime(0).write(Vec::new(), flate2::Compression::best());
        gz.write_all(&page).expect("gzip a man page");
        write_if_changed(&dest.join(name), &gz.finish().expect("gzip a man page"));
    }
}

fn completions(mut cmd: clap::Command, dest: &Path) {
    use clap_complete::Shell;
    std::fs::create_dir_all(dest).expect("create the completions directory");
    for (shell, file) in [(Shell::Bash, "wa-sentinel"), (Shell::Zsh, "_wa-sentinel"), (Shell::Fish, "wa-sentinel.fish")]
    {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut cmd, "wa-sentinel", &mut buf);
        write_if_changed(&dest.join(file), &buf);
    }
}

/// The documented `config.toml`, with the database where the unit's
/// `StateDirectory=` puts it.
fn packaged_config(source: &Path, dest: &Path) {
    let text = std::fs::read_to_string(source).expect("read config.toml");
    assert_eq!(
        text.lines().filter(|l| l.trim_start().starts_with(DEV_DATABASE)).count(),
        1,
        "config.toml must have exactly one `{DEV_DATABASE}` line: the package replaces it with `{PACKAGED_DATABASE}`"
    );
    let header = "# Installed by the wa-sentinel package as /etc/wa-sentinel/config.toml, a conffile: upgrades\n\
                  # keep your edits. Secrets go in /etc/default/wa-sentinel, named here by *_env keys.\n\
                  # Then: sudo systemctl enable --now wa-sentinel (see /usr/share/doc/wa-sentinel/operations.md).\n\
                  #\n";
    let body = text.replacen(DEV_DATABASE, PACKAGED_DATABASE, 1);
    write_if_changed(dest, format!("{header}{body}").as_bytes());
}

/// Write only when the bytes differ, through a rename: a reader never sees half a file.
fn write_if_changed(path: &Path, bytes: &[u8]) {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap_or_else(|e| panic!("write {}: {e}", tmp.display()));
    std::fs::rename(&tmp, path).unwrap_or_else(|e| panic!("rename to {}: {e}", path.display()));
}
