//! The incident ferrowall exists to make impossible, as a test.
//!
//! A hypervisor firewall crashed hosts because its FQDN lists were corrupted while DNS answers
//! updated and deleted entries and a reader dumped flows "with attributes". Here, for a fixed
//! time and as fast as they can: worker threads decide new flows by FQDN rules (looking their
//! tables up, attributing names to flows, expiring flows), the control thread learns, updates
//! and deletes (TTL 0) entries and publishes tables, and an admin thread lists every worker's
//! flows with their names, all through the appliance's own code and message rings. Every name
//! the reader sees must be whole and one that was learned; every entry a worker reads must be
//! whole; nothing may crash or leak.
//!
//! `INCIDENT_SECONDS` sets the length (default 3 s, the `make test` run; `make soak` runs it
//! for minutes, also under ThreadSanitizer and AddressSanitizer — see the README).

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use dataplane::agent::{Agent, FleetVersions, FromWorker, ToWorker, link};
use dataplane::dns::message::build::{RecordSpec, response};
use dataplane::dns::message::rtype;
use dataplane::fqdn::{Learner, LearnerStats, Limits};
use dataplane::pipeline::{Disposition, Effects};
use dataplane::{Pipeline, PipelineConfig, PipelineStats, Policy, Side};

const WORKERS: usize = 2;
const NAMES: u32 = 64;
/// Addresses 198.18.0.0/22: 1024 of them, shared by all names so that updates overlap.
const ADDRESSES: u32 = 1024;

const CONFIG: &str = r#"
[ports.inside]
device = "a"
[ports.outside]
device = "b"
[flows]
capacity = 8192
tcp_transitory_timeout = "50ms"
[dns]
min_ttl = "0s"
max_ttl = "2s"
max_ips_per_name = 16
max_ips = 8192
max_names = 256
[[rule]]
name = "incident"
action = "allow"
proto = "tcp"
dst_fqdn = ["**.incident.test"]
dst_ports = ["443"]
[default]
action = "drop"
"#;

fn name(k: u32) -> String {
    format!("n{k}.incident.test")
}

/// Whether `s` is exactly one of the names the control thread learns.
fn is_learned_name(s: &str) -> bool {
    s.strip_prefix('n')
        .and_then(|r| r.strip_suffix(".incident.test"))
        .and_then(|k| k.parse::<u32>().ok())
        .is_some_and(|k| k < NAMES && s == name(k))
}

fn addr(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(0xc612_0000 | (i % ADDRESSES))
}

fn syn(dst: Ipv4Addr, sport: u16) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    f.extend_from_slice(&[0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 2]);
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&[
        0x01, 0xbb, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0,
    ]);
    f.resize(60, 0);
    f
}

/// A tiny xorshift so each thread has its own reproducible stream.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        u32::try_from(self.0 >> 32).unwrap_or(0)
    }
}

#[test]
fn concurrent_lookups_updates_deletes_and_listings_never_corrupt_fqdn_state() {
    let seconds: f64 = std::env::var("INCIDENT_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let cfg = config::parse(CONFIG, "incident.toml").expect("valid");
    let policy = Arc::new(Policy::compile(&cfg, 1, WORKERS));
    let (mut learner, tables) = Learner::new(
        Limits::from_config(&cfg.dns),
        Arc::clone(&policy),
        WORKERS,
        Arc::new(LearnerStats::default()),
    );
    let fleet = Arc::new(FleetVersions::new(WORKERS));
    let start = Instant::now();
    let now = move || u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
    let stop = AtomicBool::new(false);
    let (lookups, attributed, listed, learned) = (
        AtomicU64::new(0),
        AtomicU64::new(0),
        AtomicU64::new(0),
        AtomicU64::new(0),
    );

    let mut workers = Vec::new();
    let mut controls = Vec::new();
    let mut admins = Vec::new();
    for (w, table) in tables.into_iter().enumerate() {
        let (wl, cl, al) = link();
        controls.push(cl);
        admins.push(al);
        let mut p: Pipeline<Vec<u8>> = Pipeline::new(
            PipelineConfig::from_config(&cfg, w, 7 + w as u64),
            Arc::clone(&policy),
            Arc::new(PipelineStats::default()),
        );
        drop(p.set_fqdn(table));
        workers.push((p, Agent::new(w, wl, Arc::clone(&fleet), Arc::default())));
    }

    std::thread::scope(|s| {
        // Workers: new flows to random addresses, decided by the FQDN rule.
        for (w, (mut p, mut agent)) in workers.into_iter().enumerate() {
            let (stop, lookups, attributed, fleet) = (&stop, &lookups, &attributed, &fleet);
            s.spawn(move || {
                let mut rng = Rng(0x1234_5678 + w as u64);
                let mut fx = Effects::default();
                let mut sport = 1024u16;
                while !stop.load(Ordering::Relaxed) {
                    let burst: Vec<Vec<u8>> = (0..32)
                        .map(|_| {
                            sport = sport.wrapping_add(1).max(1024);
                            syn(addr(rng.next()), sport)
                        })
                        .collect();
                    let t = now();
                    let mut allowed = 0;
                    p.process_burst(burst, Side::Inside, t, &mut fx, |d, _| {
                        allowed += u64::from(matches!(d, Disposition::Pass(_)))
                    });
                    lookups.fetch_add(32, Ordering::Relaxed);
                    attributed.fetch_add(allowed, Ordering::Relaxed);
                    // Every entry this worker can read is whole.
                    for (_, e) in p.fqdn().iter().take(8) {
                        assert!(!e.names.is_empty());
                        for n in e.names.iter() {
                            assert!(is_learned_name(n), "worker {w} read a corrupt name {n:?}");
                        }
                    }
                    p.maintain(t, || fleet.min(), &mut fx);
                    agent.quiescent(&mut p, &mut fx, t);
                    fx.released.clear();
                    fx.generated.clear();
                }
            });
        }

        // The admin thread: lists every worker's flows with their names, over and over.
        {
            let (stop, listed) = (&stop, &listed);
            let mut admins = std::mem::take(&mut admins);
            s.spawn(move || {
                let mut id = 0;
                while !stop.load(Ordering::Relaxed) {
                    for a in &mut admins {
                        id += 1;
                        let listing = a.list_flows(
                            id,
                            |r| {
                                if let Some(n) = &r.fqdn {
                                    assert!(is_learned_name(n), "listing saw a corrupt name {n:?}");
                                    listed.fetch_add(1, Ordering::Relaxed);
                                }
                                assert_eq!(r.proto, 6);
                            },
                            || {
                                std::thread::yield_now();
                                !stop.load(Ordering::Relaxed)
                            },
                        );
                        if listing.is_err() {
                            return; // stopping
                        }
                    }
                }
            });
        }

        // The control thread: learns, updates and deletes as fast as it can, and publishes.
        let mut rng = Rng(0xdead_beef);
        let mut id = 0u16;
        while start.elapsed().as_secs_f64() < seconds {
            for _ in 0..64 {
                id = id.wrapping_add(1);
                let k = rng.next() % NAMES;
                let n = name(k);
                // TTL 0 deletes at the next expiry; short TTLs update and expire soon.
                let ttl = [0, 0, 1, 2][(rng.next() % 4) as usize];
                let answers: Vec<(&str, u32, RecordSpec)> = (0..1 + rng.next() % 4)
                    .map(|_| (n.as_str(), ttl, RecordSpec::A(addr(rng.next()))))
                    .collect();
                learner.learn(&response(id, &n, rtype::A, &answers), now());
                learned.fetch_add(1, Ordering::Relaxed);
            }
            learner.expire(now());
            learner.commit();
            for (w, c) in controls.iter_mut().enumerate() {
                while let Ok(msg) = c.from_worker.pop() {
                    match msg {
                        FromWorker::FqdnReturned(t) => learner.returned(w, t),
                        FromWorker::Retired(p) => drop(p),
                        FromWorker::RetiredRules(r) => drop(r),
                        FromWorker::Dns(_) => {}
                    }
                }
                if c.to_worker.slots() > 0 {
                    if let Some(t) = learner.publish(w) {
                        let _ = c.to_worker.push(ToWorker::Fqdn(t));
                    }
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
    });

    let (l, a, r, n) = (
        lookups.into_inner(),
        attributed.into_inner(),
        listed.into_inner(),
        learned.into_inner(),
    );
    eprintln!(
        "{seconds} s: {l} lookups, {a} flows allowed by name, {r} attributed rows listed, {n} answers learned, {} table versions",
        learner.version()
    );
    assert!(
        l > 1000 && a > 10 && r > 10 && n > 1000,
        "every actor did real work"
    );
    let evicted = learner.stats().evictions[0].get();
    assert!(evicted > 100, "TTL deletions happened: {evicted}");
}
