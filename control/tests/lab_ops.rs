//! Operations end to end: a running ferrowall in the lab (examples/lab.toml: DNS, ping, and
//! web.lab.test by name), inspected and reloaded the way an operator does it — every admin
//! command in text and `--json`, `/metrics` checked by `promtool`, reloads by command and by
//! SIGHUP (good and broken), malformed admin requests, and systemd's readiness messages.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::lab::{Lab, Ns, addr};
use testkit::process::{Running, ferrowall_bin};

fn cli(socket: &Path, args: &[&str]) -> Output {
    Command::new(ferrowall_bin())
        .args(args)
        .arg("--socket")
        .arg(socket)
        .output()
        .expect("running ferrowall")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(socket: &Path, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.push("--json");
    let text = ok(&cli(socket, &a));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"))
}

/// A raw admin exchange: `request` as sent, the answer's lines.
fn raw(socket: &Path, request: &[u8]) -> Vec<Value> {
    let mut s = UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn scrape(lab: &Lab) -> String {
    let out = lab.run(
        Ns::Fw,
        &[
            "curl",
            "-sf",
            "--max-time",
            "5",
            "http://127.0.0.1:9469/metrics",
        ],
    );
    ok(&out)
}

/// The value of the sample `series` (exact name and labels) in a scrape.
fn sample(scrape: &str, series: &str) -> f64 {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{scrape}"))
}

fn promtool_check(scrape: &str) {
    let mut p = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus)");
    p.stdin
        .take()
        .unwrap()
        .write_all(scrape.as_bytes())
        .unwrap();
    let out = p.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Run in ferrowall's namespace: a garbage request, then a client that sends half a request
/// head and waits, with a normal scrape while it waits.
const HTTP_CLIENTS: &str = r#"
import socket, time, urllib.request
s = socket.create_connection(("127.0.0.1", 9469), timeout=10)
s.sendall(b"\x00\x01 garbage\r\n\r\n")
print("garbage:", s.recv(100).split(b"\r\n")[0].decode())
s.close()
slow = socket.create_connection(("127.0.0.1", 9469), timeout=30)
slow.sendall(b"GET /metr")
t0 = time.time()
r = urllib.request.urlopen("http://127.0.0.1:9469/metrics", timeout=5)
print("scrape during slow client:", r.status)
while slow.recv(4096):
    pass
print("slow client cut after", round(time.time() - t0, 1))
"#;

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_operator_inspects_and_reloads_a_running_instance() {
    let dir = testkit::scratch_dir("lab-ops");
    std::fs::write(dir.join("index.html"), "hello from web.lab.test\n").unwrap();
    let lab = Lab::up(&format!("lo{}", std::process::id() % 100_000));
    let _dns = lab.start_dns();
    let _web = lab.start_web(&dir);

    let socket = dir.join("admin.sock");
    let config = dir.join("ferrowall.toml");
    let base = std::fs::read_to_string(testkit::project_root().join("examples/lab.toml")).unwrap();
    let with_socket = |policy: &str| {
        format!(
            "{policy}\n[admin]\nsocket = {:?}\n",
            socket.display().to_string()
        )
    };
    std::fs::write(&config, with_socket(&base)).unwrap();

    let notify_path = dir.join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut cmd = lab.command(Ns::Fw, ferrowall_bin().to_str().unwrap());
    cmd.args(["run", "--config"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &notify_path);
    let mut fw = Running::start(cmd);
    let mut buf = [0u8; 64];
    let n = notify.recv(&mut buf).expect("READY=1 from ferrowall");
    assert_eq!(&buf[..n], b"READY=1", "systemd readiness");
    fw.wait_for("worker started", Duration::from_secs(5));
    // Its memory is locked, and it restarted itself with allocator arenas committed as used,
    // so that locking does not make a whole 1 GiB arena resident (512 MiB of DPDK memory,
    // tables for 1M addresses and 64k flows: about 0.8 GiB; with the arena committed whole it
    // is over 1.6).
    let status = std::fs::read_to_string(format!("/proc/{}/status", fw.pid())).unwrap();
    let kib = |key: &str| -> u64 {
        status
            .lines()
            .find_map(|l| {
                l.strip_prefix(key)?
                    .trim()
                    .strip_suffix(" kB")?
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no {key} in {status}"))
    };
    assert!(kib("VmLck:") > 0, "memory not locked: {status}");
    assert!(
        kib("VmRSS:") < 1280 * 1024,
        "resident: {} KiB",
        kib("VmRSS:")
    );
    let environ = std::fs::read(format!("/proc/{}/environ", fw.pid())).unwrap();
    assert!(
        environ
            .split(|&b| b == 0)
            .any(|v| v == b"MIMALLOC_ARENA_EAGER_COMMIT=0"),
        "not restarted with lazily committed arenas"
    );
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the admin socket is for root only");

    // Traffic: pings, and a page by name (learned from the DNS answer ferrowall sees).
    wait_until("the web server", Duration::from_secs(10), || {
        lab.run(
            Ns::Server,
            &["curl", "-sf", "--max-time", "1", "http://192.0.2.10/"],
        )
        .status
        .success()
    });
    assert!(lab.ping(addr::SERVER, 2));
    assert_eq!(
        lab.fetch("http://web.lab.test/", 5).as_deref(),
        Some("hello from web.lab.test\n")
    );
    let before = scrape(&lab);
    promtool_check(&before);

    // stats
    let text = ok(&cli(&socket, &["stats"]));
    assert!(text.contains("policy generation 1"), "{text}");
    assert!(text.contains("net_af_packet0"), "{text}");
    let st = json(&socket, &["stats"]);
    assert_eq!(st["generation"], 1);
    assert!(st["workers"][0]["packets"].as_u64().unwrap() > 0, "{st}");
    assert!(st["ports"][0]["rx_packets"].as_u64().is_some(), "{st}");
    assert!(
        st["dns"]["answers"]["learned"].as_u64().unwrap() >= 1,
        "{st}"
    );
    assert!(st["dns"]["fqdn_entries"].as_u64().unwrap() >= 1, "{st}");

    // flows
    let flows = json(&socket, &["flows"]);
    let rows = flows.as_array().unwrap();
    let web = rows
        .iter()
        .find(|r| r["fqdn"] == "web.lab.test")
        .unwrap_or_else(|| panic!("no flow attributed to web.lab.test: {flows}"));
    assert_eq!(web["rule"], "web");
    assert_eq!(web["proto"], "tcp");
    assert_eq!(web["verdict"], "allow");
    assert_eq!(web["dst"], "192.0.2.10:80");
    assert!(web["packets"].as_u64().unwrap() >= 3, "{web}");
    for key in ["worker", "src", "state", "bytes", "age_s"] {
        assert!(!web[key].is_null(), "{key} in {web}");
    }
    assert!(
        rows.iter()
            .any(|r| r["rule"] == "ping" && r["proto"] == "icmp"),
        "{flows}"
    );
    let by_name = json(&socket, &["flows", "--fqdn", "*.lab.test"]);
    let by_name = by_name.as_array().unwrap();
    assert!(!by_name.is_empty() && by_name.iter().all(|r| r["fqdn"] == "web.lab.test"));
    assert_eq!(
        json(&socket, &["flows", "--fqdn", "nothing.test"]),
        Value::Array(vec![])
    );
    let text = ok(&cli(&socket, &["flows"]));
    assert!(
        text.contains("web.lab.test") && text.contains("192.0.2.10:80"),
        "{text}"
    );

    // fqdn
    let table = json(&socket, &["fqdn"]);
    let entry = table
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ip"] == addr::SERVER)
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        entry["names"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "web.lab.test")
    );
    assert_eq!(entry["rules"], serde_json::json!(["web"]));
    assert!(entry["flows"].as_u64().unwrap() >= 1, "{entry}");
    assert!(entry["expires_in_s"].as_f64().unwrap() > 0.0);
    assert_eq!(
        json(&socket, &["fqdn", "--pattern", "other.test"]),
        Value::Array(vec![])
    );
    let text = ok(&cli(&socket, &["fqdn"]));
    assert!(
        text.contains("192.0.2.10") && text.contains("web.lab.test"),
        "{text}"
    );

    // rules
    let rules = json(&socket, &["rules"]);
    let rules = rules.as_array().unwrap();
    let ping = rules.iter().find(|r| r["name"] == "ping").unwrap();
    assert_eq!(ping["action"], "allow");
    assert!(ping["packets"].as_u64().unwrap() >= 4, "{ping}");
    let last = rules.last().unwrap();
    assert_eq!(
        (&last["default"], &last["action"]),
        (&Value::Bool(true), &Value::from("drop"))
    );
    let text = ok(&cli(&socket, &["rules"]));
    assert!(
        text.contains("ping") && text.contains("(default)"),
        "{text}"
    );

    // Counters move as traffic passes.
    assert!(lab.ping(addr::SERVER, 3));
    let after = scrape(&lab);
    promtool_check(&after);
    let worker = "ferrowall_worker_packets_total{worker=\"0\"}";
    assert!(sample(&after, worker) >= sample(&before, worker) + 6.0);
    let ping_rule = "ferrowall_rule_packets_total{rule=\"ping\"}";
    assert!(sample(&after, ping_rule) >= sample(&before, ping_rule) + 6.0);
    assert!(sample(&after, "ferrowall_dns_answers_total{result=\"learned\"}") >= 1.0);
    assert!(sample(&after, "ferrowall_fqdn_entries") >= 1.0);
    assert_eq!(sample(&after, "ferrowall_config_generation"), 1.0);

    // A malformed HTTP request gets 400; a client that never finishes its request is cut off
    // after the header timeout, and scrapes go on meanwhile.
    let http = lab.run(Ns::Fw, &["python3", "-c", HTTP_CLIENTS]);
    let http_out = ok(&http);
    assert!(http_out.contains("garbage: HTTP/1.1 400"), "{http_out}");
    assert!(
        http_out.contains("scrape during slow client: 200"),
        "{http_out}"
    );
    let cut: f64 = http_out
        .lines()
        .find_map(|l| l.strip_prefix("slow client cut after ")?.parse().ok())
        .unwrap_or_else(|| panic!("{http_out}"));
    assert!((4.0..15.0).contains(&cut), "header timeout (5 s): {cut}");

    // Malformed admin requests get errors, and the socket keeps serving.
    for bad in [
        &b"hello\n"[..],
        b"{\"cmd\":\"drop-everything\"}\n",
        b"{\"cmd\":\"stats\",\"verbose\":true}\n",
        b"{\"cmd\":\"flows\",\"fqdn\":\"a.*.b\"}\n",
        &[b'{'; 8192][..],
    ] {
        let answer = raw(&socket, bad);
        assert_eq!(answer.len(), 1, "{answer:?}");
        assert_eq!(answer[0]["ok"], false, "{answer:?}");
        assert!(answer[0]["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    let bad_cli = cli(&socket, &["flows", "--fqdn", "a.*.b"]);
    assert_eq!(bad_cli.status.code(), Some(2), "a bad pattern is bad usage");
    assert_eq!(raw(&socket, b"{\"cmd\":\"stats\"}\n")[0]["ok"], true);

    // A valid reload: ping is dropped from now on, for new flows and for the live one.
    let mut pinger = lab.command(Ns::Client, "ping");
    pinger.args(["-c", "25", "-i", "0.2", "-W", "1", addr::SERVER]);
    let pinger = Running::start(pinger);
    std::thread::sleep(Duration::from_millis(1500));
    let dropping_ping = base.replacen(
        "name = \"ping\"\naction = \"allow\"",
        "name = \"ping\"\naction = \"drop\"",
        1,
    );
    assert_ne!(dropping_ping, base);
    std::fs::write(&config, with_socket(&dropping_ping)).unwrap();
    let text = ok(&cli(&socket, &["reload"]));
    assert_eq!(text.trim(), "reloaded: generation 2");
    let pinged = pinger.wait(Duration::from_secs(30));
    let received: u32 = pinged
        .stdout
        .split(", ")
        .find_map(|p| p.strip_suffix(" received")?.parse().ok())
        .unwrap_or_else(|| panic!("{}", pinged.stdout));
    assert!(
        (3..=12).contains(&received),
        "the live ping flow stops at the reload: {received} of 25 answered"
    );
    assert!(!lab.ping(addr::SERVER, 1), "new pings are dropped");
    assert_eq!(json(&socket, &["stats"])["generation"], 2);
    let rules = json(&socket, &["rules"]);
    let ping = rules
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "ping")
        .unwrap()
        .clone();
    assert_eq!(ping["action"], "drop");
    assert!(
        ping["packets"].as_u64().unwrap() >= 10,
        "counts survive the reload: {ping}"
    );

    // A broken configuration: reload says why, the running policy stays, traffic flows.
    std::fs::write(
        &config,
        "[[rule]]\nname = \"x\"\naction = \"allow\"\ndst_ports = [\"99999\"]\n",
    )
    .unwrap();
    let refused = cli(&socket, &["reload"]);
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains(&format!("{}:", config.display())) && err.contains("99999"),
        "FILE:LINE:COL and the bad value: {err}"
    );
    assert_eq!(
        lab.fetch("http://web.lab.test/", 5).as_deref(),
        Some("hello from web.lab.test\n"),
        "traffic goes on under generation 2"
    );
    let st = json(&socket, &["stats"]);
    assert_eq!(
        (st["generation"].as_u64(), st["reloads"]["error"].as_u64()),
        (Some(2), Some(1))
    );
    let m = scrape(&lab);
    assert_eq!(
        sample(&m, "ferrowall_config_reloads_total{result=\"error\"}"),
        1.0
    );
    assert_eq!(
        sample(&m, "ferrowall_config_reloads_total{result=\"ok\"}"),
        1.0
    );

    // SIGHUP reloads too: back to the original policy, pings pass again.
    std::fs::write(&config, with_socket(&base)).unwrap();
    fw.signal("HUP");
    wait_until("generation 3", Duration::from_secs(10), || {
        json(&socket, &["stats"])["generation"] == 3
    });
    assert!(lab.ping(addr::SERVER, 2), "pings pass again after SIGHUP");

    let done = fw.stop(Duration::from_secs(20));
    assert!(done.status.success(), "{}", done.stderr);
    let n = notify.recv(&mut buf).expect("STOPPING=1 from ferrowall");
    assert_eq!(&buf[..n], b"STOPPING=1");
    assert!(!socket.exists(), "the admin socket is removed at exit");
    assert!(
        done.stderr.contains("configuration reloaded"),
        "{}",
        done.stderr
    );
}
