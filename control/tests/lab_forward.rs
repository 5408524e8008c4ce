//! `ferrowall run` with `net_af_packet` ports in the namespace lab of `scripts/lab`: ping and a
//! TCP transfer from the client to the server pass through ferrowall, and stop passing when it
//! stops (so the path really goes through it).

use std::time::Duration;

use testkit::lab::{Lab, Ns, addr};
use testkit::process::{Running, ferrowall_bin};

fn fetch(lab: &Lab, url: &str, out: &std::path::Path) -> bool {
    lab.run(
        Ns::Client,
        &[
            "curl",
            "-sf",
            "--max-time",
            "5",
            "-o",
            out.to_str().unwrap(),
            url,
        ],
    )
    .status
    .success()
}

#[test]
fn ping_and_tcp_pass_through_ferrowall_and_stop_with_it() {
    let dir = testkit::scratch_dir("lab-forward");
    let blob: Vec<u8> = (0..2_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(dir.join("blob"), &blob).unwrap();
    let lab = Lab::up(&format!("lf{}", std::process::id() % 100_000));

    assert!(
        !lab.ping(addr::SERVER, 1),
        "without ferrowall the sides are not connected"
    );

    let mut web = lab.command(Ns::Server, "/usr/bin/python3");
    web.args(["-m", "http.server", "8080", "--bind", "::", "--directory"])
        .arg(&dir);
    let _web = Running::start(web);

    let config = dir.join("lab-open.toml");
    let open =
        std::fs::read_to_string(testkit::project_root().join("examples/lab-open.toml")).unwrap();
    std::fs::write(&config, testkit::isolated(&open, &dir)).unwrap();
    let mut cmd = lab.command(Ns::Fw, ferrowall_bin().to_str().unwrap());
    cmd.args(["run", "--config"]).arg(&config);
    let mut fw = Running::start(cmd);
    fw.wait_for("worker started", Duration::from_secs(20));

    assert!(lab.ping(addr::SERVER, 3), "IPv4 ping through ferrowall");
    assert!(lab.ping(addr::SERVER6, 3), "IPv6 ping through ferrowall");
    let got = dir.join("got");
    let url = format!("http://{}:8080/blob", addr::SERVER);
    let fetched = (0..20).any(|_| {
        fetch(&lab, &url, &got) || {
            std::thread::sleep(Duration::from_millis(250)); // the web server may still be starting
            false
        }
    });
    assert!(
        fetched,
        "TCP transfer through ferrowall; ferrowall: {}",
        fw.stderr()
    );
    assert_eq!(std::fs::read(&got).unwrap(), blob, "2 MB arrive intact");
    let url6 = format!("http://[{}]:8080/blob", addr::SERVER6);
    assert!(fetch(&lab, &url6, &got), "TCP over IPv6 through ferrowall");

    let done = fw.stop(Duration::from_secs(20));
    assert!(done.status.success(), "clean stop: {}", done.stderr);
    assert!(done.stdout.contains("final counters"), "{}", done.stdout);

    assert!(!lab.ping(addr::SERVER, 2), "ping stops with ferrowall");
    let _ = std::fs::remove_file(&got);
    assert!(!fetch(&lab, &url, &got), "TCP stops with ferrowall");
}
