//! FQDN rules end to end in the lab: a real resolver (dnsmasq) and web server on the outside,
//! a real client (curl) on the inside, ferrowall with examples/lab.toml in between. A name the
//! rules allow is reachable once resolved through ferrowall; its address is not reachable
//! before; names and addresses the rules do not name never are.

use std::time::Duration;

use testkit::lab::{Lab, Ns};
use testkit::process::{Running, ferrowall_bin};

#[test]
fn names_learned_from_dns_open_the_way_and_nothing_else_does() {
    let dir = testkit::scratch_dir("lab-fqdn");
    std::fs::write(dir.join("index.html"), "hello from web.lab.test\n").unwrap();
    let lab = Lab::up(&format!("lq{}", std::process::id() % 100_000));
    let _dns = lab.start_dns();
    let _web = lab.start_web(&dir);

    // examples/lab.toml, with the FQDN cache kept in the test's folder.
    let cache = dir.join("fqdn-cache.json");
    let config = dir.join("lab.toml");
    let text = std::fs::read_to_string(testkit::project_root().join("examples/lab.toml")).unwrap();
    let text = text.replace(
        "cache_file = \"\"",
        &format!("cache_file = {:?}", cache.display().to_string()),
    );
    std::fs::write(&config, testkit::isolated(&text, &dir)).unwrap();
    let start = || {
        let mut cmd = lab.command(Ns::Fw, ferrowall_bin().to_str().unwrap());
        cmd.args(["run", "--config"]).arg(&config);
        let mut fw = Running::start(cmd);
        fw.wait_for("worker started", Duration::from_secs(20));
        fw
    };
    let fw = start();
    // The web server may still be starting: wait until the server itself answers locally.
    for _ in 0..40 {
        if lab
            .run(
                Ns::Server,
                &["curl", "-sf", "--max-time", "1", "http://192.0.2.10/"],
            )
            .status
            .success()
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }

    assert!(lab.ping("192.0.2.10", 2), "ping is allowed by the policy");
    assert_eq!(
        lab.fetch("http://192.0.2.10/", 2),
        None,
        "the address is not learned yet"
    );
    let body = lab.fetch("http://web.lab.test/", 5);
    assert_eq!(
        body.as_deref(),
        Some("hello from web.lab.test\n"),
        "allowed by name; ferrowall: {}",
        fw.stderr()
    );
    assert_eq!(
        lab.fetch("http://192.0.2.10/", 3).as_deref(),
        Some("hello from web.lab.test\n"),
        "now learned"
    );
    assert_eq!(
        lab.fetch("http://192.0.2.11/", 2),
        None,
        "an address no allowed name has"
    );
    assert_eq!(
        lab.fetch("http://other.lab.test/", 2),
        None,
        "a name no rule allows, though it resolves"
    );

    let done = fw.stop(Duration::from_secs(20));
    assert!(done.status.success(), "{}", done.stderr);
    let learned: u64 = done
        .stdout
        .split("learned ")
        .nth(1)
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(learned >= 1, "the learner learned: {}", done.stdout);
    assert!(done.stdout.contains("fqdn_flows "), "{}", done.stdout);

    // The table was saved at stop and is restored at the next start, TTLs running on: the
    // address is reachable at once, without a new DNS answer.
    let saved = std::fs::read_to_string(&cache).expect("the cache file was written at stop");
    assert!(saved.contains("web.lab.test"), "{saved}");
    let fw = start();
    assert!(
        fw.stderr().contains("FQDN cache restored"),
        "{}",
        fw.stderr()
    );
    assert_eq!(
        lab.fetch("http://192.0.2.10/", 3).as_deref(),
        Some("hello from web.lab.test\n")
    );
    assert_eq!(lab.fetch("http://192.0.2.11/", 2), None);
    let done = fw.stop(Duration::from_secs(20));
    assert!(done.status.success(), "{}", done.stderr);
}
