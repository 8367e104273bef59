//! The Debian package (`cargo deb`, see Cargo.toml) and what it installs.
//!
//! The package is built by `.ci/run` (or by hand: `cargo deb`) before the
//! tests run; a test finds it at `target/debian/wa-sentinel_<version>_amd64.deb`
//! and is skipped without it, except under `CI=true`. It is unpacked into an
//! extracted tree (the files, modes and conffiles, and the installed binary's
//! `check-config` on the installed config), and installed into a scratch root
//! with `dpkg --root` running its maintainer scripts against that root
//! `DPKG_ROOT`: user, enablement, upgrade, purge.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn deb() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("target/debian/wa-sentinel_{VERSION}_amd64.deb"));
    if p.is_file() {
        return Some(p);
    }
    assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true but {} is missing: run `cargo deb`", p.display());
    eprintln!("skipping: {} not built (run `cargo deb`)", p.display());
    None
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).permissions().mode() & 0o7777
}

#[test]
fn version_names_the_commit() {
    let out = run(Command::new(env!("CARGO_BIN_EXE_wa-sentinel")).arg("--version"));
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let commit = line
        .strip_prefix(&format!("wa-sentinel {VERSION} (commit "))
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("`{line}` is not `wa-sentinel {VERSION} (commit …)`"));
    let head =
        Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).current_dir(env!("CARGO_MANIFEST_DIR")).output();
    match head {
        Ok(h) if h.status.success() => assert_eq!(commit, String::from_utf8_lossy(&h.stdout).trim(), "{line}"),
        _ => assert!(commit == "unknown" || commit.bytes().all(|b| b.is_ascii_hexdigit()), "{line}"),
    }
}

#[test]
fn changelog_names_this_version() {
    let changelog = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/debian/changelog")).unwrap();
    let first = changelog.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!("wa-sentinel ({VERSION}) ")),
        "debian/changelog must start with an entry for {VERSION} (the package version): {first}"
    );
}

#[test]
fn extracted_package_holds_every_file_and_its_binary_accepts_its_config() {
    let Some(deb) = deb() else { return };
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(r));

    let files = [
        ("usr/bin/wa-sentinel", 0o755),
        ("usr/lib/systemd/system/wa-sentinel.service", 0o644),
        ("usr/lib/sysusers.d/wa-sentinel.conf", 0o644),
        ("etc/wa-sentinel/config.toml", 0o644),
        ("etc/default/wa-sentinel", 0o640),
        ("usr/share/man/man1/wa-sentinel.1.gz", 0o644),
        ("usr/share/man/man1/wa-sentinel-run.1.gz", 0o644),
        ("usr/share/bash-completion/completions/wa-sentinel", 0o644),
        ("usr/share/zsh/vendor-completions/_wa-sentinel", 0o644),
        ("usr/share/fish/vendor_completions.d/wa-sentinel.fish", 0o644),
        ("usr/share/doc/wa-sentinel/copyright", 0o644),
        ("usr/share/doc/wa-sentinel/changelog.gz", 0o644),
        ("usr/share/doc/wa-sentinel/README.md", 0o644),
        ("usr/share/doc/wa-sentinel/docs/operations.md", 0o644),
        ("usr/share/doc/wa-sentinel/docs/status-page.png", 0o644),
    ];
    for (f, m) in files {
        assert_eq!(mode(&r.join(f)), m, "{f}: mode {:o}, want {m:o}", mode(&r.join(f)));
    }
    let unit = std::fs::read_to_string(r.join("usr/lib/systemd/system/wa-sentinel.service")).unwrap();
    assert_eq!(
        unit,
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/wa-sentinel.service")).unwrap()
    );
    for line in
        ["Type=notify", "WatchdogSec=", "ExecStart=/usr/bin/wa-sentinel --config /etc/wa-sentinel/config.toml run"]
    {
        assert!(unit.contains(line), "unit lacks `{line}`");
    }

    // Stripped: no symbol table, no DWARF; a debug link to the -dbgsym package's file instead.
    if let Ok(sections) = Command::new("readelf").args(["-S", "-W"]).arg(r.join("usr/bin/wa-sentinel")).output() {
        let sections = String::from_utf8_lossy(&sections.stdout);
        for gone in [".symtab", ".debug_info", ".debug_line"] {
            assert!(!sections.contains(gone), "the binary is not stripped: {gone}\n{sections}");
        }
        assert!(sections.contains(".gnu_debuglink"), "{sections}");
    }

    // The installed binary on the installed config (its SQLite under /var/lib).
    let bin = r.join("usr/bin/wa-sentinel");
    let out = run(Command::new(&bin).arg("--config").arg(r.join("etc/wa-sentinel/config.toml")).arg("check-config"));
    assert!(text(&out).contains("sqlite:///var/lib/wa-sentinel/wa-sentinel.db"), "{}", text(&out));
    assert!(text(&run(Command::new(&bin).arg("--version"))).starts_with(&format!("wa-sentinel {VERSION} (commit ")));

    // Both files in /etc are conffiles: upgrades keep the administrator's edits.
    let control = tempfile::tempdir().unwrap();
    run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(control.path()));
    let conffiles = std::fs::read_to_string(control.path().join("conffiles")).unwrap();
    let mut listed: Vec<&str> = conffiles.lines().collect();
    listed.sort();
    assert_eq!(listed, ["/etc/default/wa-sentinel", "/etc/wa-sentinel/config.toml"]);
}

/// The documentation the package installs reads as it does in the
/// repository: every link from the README and the docs/ pages to another
/// page, a screenshot or the example config resolves inside
/// /usr/share/doc/wa-sentinel. Links into the source tree (the fixtures'
/// READMEs under tests/) are the only ones left out.
#[test]
fn the_installed_documentation_has_no_broken_link() {
    let Some(deb) = deb() else { return };
    let root = tempfile::tempdir().unwrap();
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(root.path()));
    let doc = root.path().join("usr/share/doc/wa-sentinel");
    let mut pages = vec![doc.join("README.md")];
    for e in std::fs::read_dir(doc.join("docs")).expect("docs/ installed").flatten() {
        if e.path().extension().is_some_and(|x| x == "md") {
            pages.push(e.path());
        }
    }
    assert!(pages.len() >= 8, "README and the docs/ pages: {pages:?}");
    let link = regex::Regex::new(r"\]\(([^)\s]+)\)").unwrap();
    let mut broken = Vec::new();
    for page in &pages {
        let md = std::fs::read_to_string(page).unwrap();
        for c in link.captures_iter(&md) {
            let target = c[1].split('#').next().unwrap_or_default();
            let external = target.contains("://") || target.starts_with("mailto:");
            if target.is_empty() || external || target.contains("tests/") {
                continue;
            }
            if !page.parent().unwrap().join(target).exists() {
                broken.push(format!("{}: {target}", page.strip_prefix(&doc).unwrap().display()));
            }
        }
    }
    assert!(broken.is_empty(), "links that lead nowhere in the installed documentation: {broken:#?}");
}

/// `dpkg --root` with the maintainer scripts run outside a chroot against
/// `DPKG_ROOT`: only where no systemd runs (the scripts call `systemctl` when
/// `/run/systemd/system` exists, which would be this machine's) and as root.
#[test]
fn installs_upgrades_and_purges_in_a_scratch_root() {
    let Some(deb) = deb() else { return };
    let is_root = run(Command::new("id").arg("-u")).stdout.starts_with(b"0\n");
    if !is_root || Path::new("/run/systemd/system").exists() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true must run the scratch-root install");
        eprintln!("skipping: needs root and a machine without a running systemd");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    for d in ["var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers", "etc", "tmp"] {
        std::fs::create_dir_all(r.join(d)).unwrap();
    }
    std::fs::write(r.join("var/lib/dpkg/status"), "").unwrap();
    let dpkg = |args: &[&str]| {
        let mut c = Command::new("dpkg");
        c.arg(format!("--root={}", r.display()))
            .args(["--force-script-chrootless", "--force-depends", "--force-not-root", "--log=/dev/null"])
            .args(args)
            .env_remove("DPKG_MAINTSCRIPT_PACKAGE");
        run(&mut c)
    };
    let install = |deb: &Path| dpkg(&["--install", deb.to_str().unwrap()]);

    let first = text(&install(&deb));
    assert!(first.contains("NOT started"), "the first install says the service is not started:\n{first}");
    let passwd = std::fs::read_to_string(r.join("etc/passwd")).unwrap();
    let user: Vec<&str> = passwd.lines().filter(|l| l.starts_with("wa-sentinel:")).collect();
    assert_eq!(user.len(), 1, "the system user exists once:\n{passwd}");
    assert!(user[0].ends_with(":/var/lib/wa-sentinel:/usr/sbin/nologin"), "{}", user[0]);
    assert!(std::fs::read_to_string(r.join("etc/group")).unwrap().lines().any(|l| l.starts_with("wa-sentinel:")));
    let wants = r.join("etc/systemd/system/multi-user.target.wants/wa-sentinel.service");
    assert!(wants.is_symlink(), "enabled at install");
    assert_eq!(mode(&r.join("etc/default/wa-sentinel")), 0o640);

    // The administrator edits the config; a reinstall (an upgrade to the same version) keeps the edit and the user.
    let cfg = r.join("etc/wa-sentinel/config.toml");
    let edited = std::fs::read_to_string(&cfg).unwrap().replace("down_after = 2", "down_after = 3");
    std::fs::write(&cfg, &edited).unwrap();
    std::fs::create_dir_all(r.join("var/lib/wa-sentinel")).unwrap();
    std::fs::write(r.join("var/lib/wa-sentinel/wa-sentinel.db"), "data").unwrap();
    let again = text(&install(&deb));
    assert!(again.contains(&format!("upgraded from {VERSION}")), "{again}");
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), edited, "conffile edits survive an upgrade");
    assert_eq!(std::fs::read_to_string(r.join("etc/passwd")).unwrap(), passwd, "sysusers is idempotent");
    assert!(wants.is_symlink());

    // remove: config and data stay; purge: both go, the user stays.
    dpkg(&["--remove", "wa-sentinel"]);
    assert!(!r.join("usr/bin/wa-sentinel").exists());
    assert!(cfg.is_file() && r.join("var/lib/wa-sentinel/wa-sentinel.db").is_file(), "remove keeps config and data");
    dpkg(&["--purge", "wa-sentinel"]);
    assert!(!wants.is_symlink(), "purge removes the enablement");
    assert!(!r.join("etc/wa-sentinel").exists(), "purge removes the config");
    assert!(!r.join("etc/default/wa-sentinel").exists());
    assert!(!r.join("var/lib/wa-sentinel").exists(), "purge removes the database");
    assert!(std::fs::read_to_string(r.join("etc/passwd")).unwrap().contains("wa-sentinel:"), "the user stays");
}
