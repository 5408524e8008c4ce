//! perf/RESULTS.md: one section per benchmark, replaced in place when it is run again.

use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result};

fn results_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("RESULTS.md")
}

/// The CPU model from /proc/cpuinfo.
pub fn cpu_model() -> String {
    fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}

/// Logical CPUs the machine has (not the calling thread's affinity, which the EAL narrows).
pub fn cpu_count() -> usize {
    fs::read_to_string("/proc/cpuinfo")
        .map(|s| s.lines().filter(|l| l.starts_with("processor")).count())
        .unwrap_or(0)
}

/// Replaces (or appends) the section `key` of RESULTS.md with `body`, stamped with the CPU model.
pub fn write_section(key: &str, title: &str, command: &str, body: &str) -> Result<()> {
    let path = results_path();
    let old = fs::read_to_string(&path).unwrap_or_else(|_| {
        "# ferrowall benchmark results\n\nWritten by `cargo run -p perf --release -- <bench>`; each section is replaced when its benchmark runs again. Cycles are TSC cycles of the worker core.\n".to_owned()
    });
    let (start, end) = (
        format!("<!-- {key}:start -->"),
        format!("<!-- {key}:end -->"),
    );
    let section = format!(
        "{start}\n## {title}\n\nCPU: {} ({} logical CPUs). Run with `cargo run -p perf --release -- {command}`.\n\n{body}{end}",
        cpu_model(),
        cpu_count(),
    );
    let new = match (old.find(&start), old.find(&end)) {
        (Some(a), Some(b)) if a < b => format!("{}{}{}", &old[..a], section, &old[b + end.len()..]),
        _ => format!("{}\n\n{}\n", old.trim_end(), section),
    };
    fs::write(&path, new).with_context(|| format!("writing {}", path.display()))
}
