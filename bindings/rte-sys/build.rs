//! Generates the DPDK bindings from the DPDK that pkg-config finds (`libdpdk`, 22.11 or newer) and
//! compiles the C wrappers bindgen writes for DPDK's `static inline` functions.
//!
//! When a prerequisite is missing the build stops with one line naming the package to install.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const MIN_DPDK: &str = "22.11";

fn fail(msg: &str) -> ! {
    // cargo fails the build on this directive and prints just this line; exiting with success
    // keeps it from adding the script's whole output.
    println!("cargo::error={msg}");
    std::process::exit(0);
}

fn main() {
    println!("cargo::rerun-if-changed=wrapper.h");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=PKG_CONFIG_PATH");
    println!("cargo::rerun-if-env-changed=PKG_CONFIG_LIBDIR");

    let cflags = match Command::new("pkg-config")
        .args(["--cflags", &format!("libdpdk >= {MIN_DPDK}")])
        .output()
    {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        Ok(_) => fail(&format!(
            "DPDK {MIN_DPDK} or newer not found by pkg-config (libdpdk): install the package libdpdk-dev (scripts/install-deps)"
        )),
        Err(_) => {
            fail("pkg-config not found: install the package pkg-config (scripts/install-deps)")
        }
    };
    let cflags: Vec<String> = split_flags(&cflags);

    if clang_sys::load().is_err() {
        fail(
            "libclang not found (bindgen needs it): install the package libclang-dev (scripts/install-deps)",
        );
    }

    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let wrappers = out.join("static_fns");

    let bindings = bindgen::Builder::default()
        .header("wrapper.h")
        .clang_args(&cflags)
        .clang_arg("-DALLOW_EXPERIMENTAL_API")
        // Only the families the safe layer uses; their types follow.
        .allowlist_function(
            "rte_(eal|lcore|mempool|pktmbuf|mbuf|eth|ring|rdtsc|delay)_.*|rte_errno_get|rte_strerror|rte_get_(tsc_hz|main_lcore|next_lcore)|rte_socket_id|rte_version",
        )
        .allowlist_var("RTE_(ETH|MBUF|PKTMBUF|MEMPOOL|MAX_ETHPORTS|MAX_LCORE).*")
        .derive_debug(false)
        .wrap_static_fns(true)
        .wrap_static_fns_path(&wrappers)
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .size_t_is_usize(true)
        .generate()
        .unwrap_or_else(|e| fail(&format!("bindgen failed on the DPDK headers: {e}")));
    bindings
        .write_to_file(out.join("bindings.rs"))
        .unwrap_or_else(|e| fail(&format!("cannot write bindings: {e}")));

    // The wrappers include wrapper.h by path; compile them with DPDK's own flags.
    let mut build = cc::Build::new();
    build
        .file(wrappers.with_extension("c"))
        .include(env::current_dir().expect("cwd"))
        .define("ALLOW_EXPERIMENTAL_API", None)
        .opt_level(3)
        // DPDK's per-lcore variables (rte_lcore_id() in every mempool get/put) live in
        // librte_eal.so, which is loaded at start-up, never dlopen'ed: the initial-exec model
        // reads them at a fixed offset instead of calling __tls_get_addr each time.
        .flag("-ftls-model=initial-exec")
        .warnings(false);
    for f in &cflags {
        build.flag(f);
    }
    build.compile("rte_static_fns");

    // Link DPDK after the wrappers that reference it.
    if let Err(e) = pkg_config::Config::new()
        .atleast_version(MIN_DPDK)
        .probe("libdpdk")
    {
        fail(&format!(
            "pkg-config libdpdk: {e}; install the package libdpdk-dev"
        ));
    }
}

/// Splits pkg-config's flag string, keeping `-include FILE` as two arguments.
fn split_flags(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_owned).collect()
}
