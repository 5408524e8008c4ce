//! `ferrowall check`: a valid file exits 0; each class of configuration error exits 2 and prints
//! `FILE:LINE:COL: message` naming the problem.

use std::process::Command;

use testkit::process::ferrowall_bin;

const PORTS: &str =
    "[ports.inside]\ndevice = \"net_null0\"\n[ports.outside]\ndevice = \"net_null1\"\n";

fn check(name: &str, text: &str) -> (i32, String) {
    let dir = testkit::scratch_dir(&format!("check-{name}"));
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    let out = Command::new(ferrowall_bin())
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let prefix = format!("{}:", path.display());
    (
        out.status.code().unwrap_or(-1),
        stderr.replace(&prefix, "FILE:"),
    )
}

fn assert_error(name: &str, text: &str, line_col: &str, words: &[&str]) {
    let (code, stderr) = check(name, text);
    assert_eq!(code, 2, "{name}: exit code, stderr: {stderr}");
    let first = stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!("FILE:{line_col}: ")),
        "{name}: wanted FILE:{line_col}: ..., got {first:?}"
    );
    for w in words {
        assert!(
            first.contains(w),
            "{name}: {first:?} does not mention {w:?}"
        );
    }
}

#[test]
fn valid_examples_pass() {
    let mut seen = 0;
    for entry in std::fs::read_dir(testkit::project_root().join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        seen += 1;
        let out = Command::new(ferrowall_bin())
            .args(["check", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(seen > 0, "examples/ has configurations");
    let (code, stderr) = check("minimal", PORTS);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn each_error_class_exits_2_with_position() {
    assert_error(
        "syntax",
        &format!("{PORTS}[flows]\ncapacity = = 3\n"),
        "6:12",
        &["TOML syntax"],
    );
    assert_error(
        "unknown-key",
        &format!("[dpdk]\nwrokers = 2\n{PORTS}"),
        "2:1",
        &["wrokers"],
    );
    assert_error(
        "bad-cidr",
        &format!(
            "{PORTS}[[rule]]\nname = \"r\"\naction = \"allow\"\ndst_cidr = [\"10.0.0.1/33\"]\n"
        ),
        "8:13",
        &["dst_cidr", "10.0.0.1/33"],
    );
    assert_error(
        "bad-duration",
        &format!("{PORTS}[flows]\nudp_timeout = \"60 sec\"\n"),
        "6:15",
        &["udp_timeout", "60 sec"],
    );
    assert_error(
        "bad-pattern",
        &format!(
            "{PORTS}[[rule]]\nname = \"r\"\naction = \"allow\"\ndst_fqdn = [\"a.*.example.com\"]\n"
        ),
        "8:13",
        &["dst_fqdn", "a.*.example.com"],
    );
    assert_error(
        "duplicate-rule",
        &format!(
            "{PORTS}[[rule]]\nname = \"web\"\naction = \"allow\"\n[[rule]]\nname = \"web\"\naction = \"drop\"\n"
        ),
        "9:8",
        &["duplicate", "web", "line 6"],
    );
    assert_error(
        "missing-port",
        "[ports.inside]\ndevice = \"net_null0\"\n",
        "1:1",
        &["ports.outside"],
    );
    let (code, stderr) = check("missing-file-dir", "");
    assert_eq!(code, 2, "an empty file lacks both ports: {stderr}");
}

#[test]
fn unreadable_file_exits_2() {
    let out = Command::new(ferrowall_bin())
        .args(["check", "--config", "/nonexistent/ferrowall.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/nonexistent/ferrowall.toml: cannot read")
    );
}
