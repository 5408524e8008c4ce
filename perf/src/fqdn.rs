//! FQDN benchmarks: how fast the learner learns, how long a held DNS answer waits until every
//! worker can see what it taught, what table updates cost the established path, and how the
//! published tables compare with a `RwLock<HashMap>` under updates.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::Result;
use dataplane::agent::{Agent, FleetVersions, FromWorker, ToWorker, link};
use dataplane::counter::quantile_bound_of;
use dataplane::fqdn::{FqdnMap, IpEntry, IpKey, Learner};
use dataplane::pipeline::{Disposition, Effects};
use dataplane::{Pipeline, PipelineConfig, PipelineStats};
use dpdk::Mbuf;

use perf::dnsload::{self, answer, answers, compiled, dns_frame, ip_of, learn_all, learner_for};
use perf::workload::Feeder;

use crate::{Figure, Rig};

/// How many of `per_s` paced events are due `t0.elapsed()` after `t0`.
fn due(t0: Instant, per_s: u32) -> u64 {
    u64::try_from(t0.elapsed().as_nanos() * u128::from(per_s) / 1_000_000_000).unwrap_or(u64::MAX)
}

/// The writer side of [`lookups_under_updates`]: for `run_for`, `update(k)` with a fresh `k` at
/// `per_s` per second, then `publish()`, every 200 us.
fn paced_writer(
    run_for: Duration,
    per_s: u32,
    mut update: impl FnMut(u32),
    mut publish: impl FnMut(),
) {
    let t0 = Instant::now();
    let mut done = 0u64;
    let mut k = 100_000u32;
    while t0.elapsed() < run_for {
        let due = due(t0, per_s);
        while done < due {
            k = k.wrapping_add(1);
            update(k);
            done += 1;
        }
        publish();
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Answers learned per second by the learner (parse, chain, bind, commit, publish to one
/// worker every 64 answers, on a clock that advances), median of `runs`. `distinct` names are
/// answered in turn; with `fresh`, every answer brings new addresses (the table grows to about
/// 1.5 addresses per answer, evicting per name beyond 64), otherwise a name's answer repeats
/// its addresses (bindings are refreshed, as most DNS traffic does).
pub fn learn_rate(runs: usize, distinct: u32, fresh: bool) -> Result<f64> {
    const N: u32 = 200_000;
    let messages = answers(N, distinct, fresh);
    let mut rates = Vec::new();
    for _ in 0..runs {
        let (mut l, mut table) = dnsload::learner()?;
        let t0 = Instant::now();
        learn_all(&mut l, &mut table, &messages, || {
            u64::try_from(t0.elapsed().as_nanos()).unwrap_or(0)
        });
        rates.push(f64::from(N) / t0.elapsed().as_secs_f64());
        assert!(l.len() >= distinct as usize);
    }
    rates.sort_by(f64::total_cmp);
    Ok(rates[rates.len() / 2])
}

/// The control thread's loop for the DPDK benchmarks: learns handed answers, applies
/// `updates_per_s` synthetic updates, publishes, tells held answers when to go.
struct ControlLoop {
    learner: Learner,
    link: dataplane::agent::ControlLink,
    next_update: u32,
}

impl ControlLoop {
    fn run(&mut self, deadline: Instant, start: Instant, updates_per_s: u32) {
        let t0 = Instant::now();
        let mut done = 0u64;
        let mut holds: Vec<(u64, bool)> = Vec::new();
        while Instant::now() < deadline {
            let now = u64::try_from(start.elapsed().as_nanos()).unwrap_or(0);
            while let Ok(msg) = self.link.from_worker.pop() {
                match msg {
                    FromWorker::FqdnReturned(t) => self.learner.returned(0, t),
                    FromWorker::Retired(p) => drop(p),
                    FromWorker::RetiredRules(r) => drop(r),
                    FromWorker::Dns(h) => {
                        let r = self.learner.learn(&h.message, now);
                        if let Some(t) = h.hold {
                            holds.push((t, r == dataplane::fqdn::AnswerResult::Learned));
                        }
                    }
                }
            }
            // Paced synthetic updates: 50k names over 200k addresses, so that every answer
            // binds a name to an address it did not have (a table change) while the table
            // stays bounded, as it would at steady state.
            let due = due(t0, updates_per_s);
            while done < due {
                self.next_update = self.next_update.wrapping_add(1);
                let n = self.next_update;
                self.learner.learn(
                    &answer(
                        u16::try_from(n & 0xffff).unwrap_or(0),
                        100_000 + n % 50_000,
                        ip_of(n % 200_000),
                    ),
                    now,
                );
                done += 1;
            }
            let version = self.learner.commit();
            if self.link.to_worker.slots() > 0 {
                if let Some(t) = self.learner.publish(0) {
                    let _ = self.link.to_worker.push(ToWorker::Fqdn(t));
                }
            }
            holds.retain(|&(token, learned)| {
                self.link
                    .to_worker
                    .push(ToWorker::Hold {
                        token,
                        version: if learned { version } else { 0 },
                    })
                    .is_err()
            });
            std::hint::spin_loop();
        }
    }
}

/// Writes a DNS query (`answer_too`: false) or its answer into an mbuf ([`dns_frame`]).
fn write_dns(m: &mut Mbuf<'_>, sport: u16, n: u32, answer_too: bool) {
    let frame = dns_frame(sport, n, answer_too);
    let have = m.data().len();
    if frame.len() > have
        && m.append(u16::try_from(frame.len() - have).unwrap_or(0))
            .is_none()
    {
        return;
    }
    m.data_mut()[..frame.len()].copy_from_slice(&frame);
}

/// What a worker of the DPDK FQDN benchmarks carries.
struct WorkerState<'e> {
    pipeline: Pipeline<Mbuf<'e>>,
    agent: Agent,
    fx: Effects<Mbuf<'e>>,
    feeder: Feeder,
    bursts: u64,
    dns_every: u64,
    next_name: u32,
}

/// Hold latencies, as histogram bucket upper bounds (ns).
pub struct Hold {
    /// The median run's p50.
    pub p50: u64,
    /// The median run's p99.
    pub p99: u64,
    /// The worst run's p99.
    pub worst_p99: u64,
    /// Answers held, all runs.
    pub held: u64,
    /// Holds released by timeout, all runs.
    pub timeouts: u64,
}

/// Results of [`dpdk_benches`].
pub struct DpdkFigures {
    /// Established path, no FQDN updates.
    pub quiet: Figure,
    /// Established path while control applies 100k updates/s.
    pub updating: Figure,
    /// Median over alternating pairs of (cycles without updates / cycles with updates).
    pub ratio: f64,
    /// Held answers.
    pub hold: Hold,
}

/// The benchmarks that need a worker lcore: the established path with and without FQDN
/// updates, and the hold latency of DNS answers.
pub fn dpdk_benches<'e>(rig: &mut Rig<'_, 'e>, pool: &'e dpdk::Mempool<'e>) -> Result<DpdkFigures> {
    let (cfg, policy) = compiled()?;
    let start = Instant::now();
    let setup = |dns_every: u64| -> (WorkerState<'e>, ControlLoop) {
        let (learner, table) = learner_for(&cfg, &policy);
        let (wl, cl, _admin) = link();
        let mut pipeline = Pipeline::new(
            PipelineConfig::from_config(&cfg, 0, 9),
            Arc::clone(&policy),
            Arc::new(PipelineStats::default()),
        );
        drop(pipeline.set_fqdn(table));
        let agent = Agent::new(0, wl, Arc::new(FleetVersions::new(1)), Arc::default());
        let feeder = Feeder::new(100_000);
        (
            WorkerState {
                pipeline,
                agent,
                fx: Effects::default(),
                feeder,
                bursts: 0,
                dns_every,
                next_name: 0,
            },
            ControlLoop {
                learner,
                link: cl,
                next_update: 0,
            },
        )
    };
    let per_burst =
        |st: &mut WorkerState<'e>, rx: &mut dpdk::Burst<'e>, side, tx: &mut dpdk::Burst<'e>| {
            st.bursts += 1;
            let dns = st.dns_every > 0 && st.bursts % st.dns_every == 0 && rx.len() >= 2;
            let n = rx.len();
            for (i, m) in rx.as_mut_slice().iter_mut().enumerate() {
                if dns && i + 2 >= n {
                    // The burst's last two packets: a query and its answer, for a name never seen.
                    let sport = 1024 + u16::try_from(st.next_name % 60_000).unwrap_or(0);
                    write_dns(m, sport, st.next_name, i + 1 == n);
                } else {
                    st.feeder.write(m.data_mut());
                }
            }
            if dns {
                st.next_name += 1;
            }
            let now = u64::try_from(start.elapsed().as_nanos()).unwrap_or(0);
            st.pipeline
                .process_burst(rx.drain(), side, now, &mut st.fx, |d, _| {
                    if let Disposition::Pass(m) = d {
                        let _ = tx.push(m);
                    }
                });
            let fleet = &st.agent.fleet;
            st.pipeline.maintain(now, || fleet.min(), &mut st.fx);
            st.agent.quiescent(&mut st.pipeline, &mut st.fx, now);
            for r in st.fx.released.drain(..) {
                if r.decision.verdict == dataplane::Verdict::Allow {
                    let _ = tx.push(r.packet);
                }
            }
        };
    // Quiet and updating runs alternate on one warmed pipeline, so that drift of this shared
    // machine falls on both alike; the ratio is the median of the per-pair ratios.
    let (mut st, mut ctl) = setup(0);
    crate::warm_up(&mut st.pipeline, pool, &mut st.feeder, 100_000)?;
    let (mut quiet, mut updating, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rig.runs {
        let q = rig.sample(&mut st, &per_burst, &mut |deadline| {
            ctl.run(deadline, start, 0)
        })?;
        let u = rig.sample(&mut st, &per_burst, &mut |deadline| {
            ctl.run(deadline, start, 100_000)
        })?;
        ratios.push(q.cycles_per_packet() / u.cycles_per_packet());
        quiet.push(q);
        updating.push(u);
    }
    ratios.sort_by(f64::total_cmp);
    let figs = [crate::median(&quiet), crate::median(&updating)];
    crate::report("established 100k flows, no FQDN updates", figs[0]);
    crate::report("established 100k flows, 100k FQDN updates/s", figs[1]);
    let ratio = ratios[ratios.len() / 2];
    println!("established under updates / without (median of pairs): {ratio:.3}");
    // Held answers: per run, the p50 and p99 of that run's holds; the median run is reported,
    // and the worst, since one stall of this shared machine's control core holds every answer
    // that arrives during it.
    let (mut st, mut ctl) = setup(8);
    crate::warm_up(&mut st.pipeline, pool, &mut st.feeder, 100_000)?;
    let stats = Arc::clone(st.pipeline.stats());
    let h = &stats.dns_hold_latency;
    let (mut p50s, mut p99s, mut dns) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rig.runs {
        let before = h.counts();
        dns.push(rig.sample(&mut st, &per_burst, &mut |deadline| {
            ctl.run(deadline, start, 0)
        })?);
        let counts: Vec<u64> = h.counts().iter().zip(before).map(|(a, b)| a - b).collect();
        p50s.push(quantile_bound_of(&counts, 500));
        p99s.push(quantile_bound_of(&counts, 990));
    }
    crate::report(
        "established + a DNS answer every 8 bursts",
        crate::median(&dns),
    );
    p50s.sort_unstable();
    p99s.sort_unstable();
    Ok(DpdkFigures {
        quiet: figs[0],
        updating: figs[1],
        ratio,
        hold: Hold {
            p50: p50s[p50s.len() / 2],
            p99: p99s[p99s.len() / 2],
            worst_p99: p99s[p99s.len() - 1],
            held: h.count.get(),
            timeouts: stats.dns_hold_timeouts.get(),
        },
    })
}

/// FQDN lookups per second by a reader thread while a writer applies `updates_per_s` changes:
/// ferrowall's published tables (the reader swaps copies at its quiescent point every 32
/// lookups) against one `RwLock<HashMap>` (a read lock per lookup; the same map type, hasher
/// and capacity). Returns (ours, rwlock).
pub fn lookups_under_updates(seconds: f64, updates_per_s: u32) -> Result<(f64, f64)> {
    const PREFILL: u32 = 100_000;
    let run_for = Duration::from_secs_f64(seconds);

    // Ours.
    let (mut learner, mut table) = dnsload::learner()?;
    learn_all(
        &mut learner,
        &mut table,
        &answers(PREFILL, PREFILL, true),
        || 1,
    );
    let (mut to_reader, mut inbox) = rtrb::RingBuffer::<Box<FqdnMap>>::new(4);
    let (mut outbox, mut returned) = rtrb::RingBuffer::<Box<FqdnMap>>::new(4);
    let stop = AtomicBool::new(false);
    let lookups = AtomicU64::new(0);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut n = 0u64;
            let mut i = 0u32;
            let mut found = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..32 {
                    i = i.wrapping_add(1);
                    found += u64::from(
                        table
                            .get(&IpKey::new(IpAddr::V4(Ipv4Addr::from(ip_of(i % PREFILL)))))
                            .is_some(),
                    );
                }
                n += 32;
                if let Ok(t) = inbox.pop() {
                    let old = std::mem::replace(&mut table, t);
                    let _ = outbox.push(old);
                }
            }
            assert!(found > 0);
            lookups.store(n, Ordering::Relaxed);
        });
        let learner = std::cell::RefCell::new(&mut learner);
        paced_writer(
            run_for,
            updates_per_s,
            |k| {
                learner
                    .borrow_mut()
                    .learn(&answer(1, k % 200_000, ip_of(k)), 2);
            },
            || {
                let mut l = learner.borrow_mut();
                l.commit();
                while let Ok(t) = returned.pop() {
                    l.returned(0, t);
                }
                if to_reader.slots() > 0 {
                    if let Some(t) = l.publish(0) {
                        let _ = to_reader.push(t);
                    }
                }
            },
        );
        stop.store(true, Ordering::Relaxed);
    });
    let ours = lookups.load(Ordering::Relaxed) as f64 / seconds;

    // A RwLock<HashMap>, the writer taking the lock per change: the map the published tables
    // are (same hasher, sized for `max_ips` as they are), so that the lock is the difference.
    let (cfg, _) = compiled()?;
    type Map = HashMap<IpKey, Arc<IpEntry>, foldhash::quality::RandomState>;
    let shared: Arc<RwLock<Map>> = Arc::new(RwLock::new(Map::with_capacity_and_hasher(
        cfg.dns.max_ips as usize,
        Default::default(),
    )));
    let entry = Arc::new(IpEntry {
        names: vec![Arc::from("n.bench.test")].into(),
        expires: u64::MAX,
        rules: vec![2].into(),
        generation: 1,
    });
    if let Ok(mut m) = shared.write() {
        for i in 0..PREFILL {
            m.insert(
                IpKey::new(IpAddr::V4(Ipv4Addr::from(ip_of(i)))),
                Arc::clone(&entry),
            );
        }
    }
    stop.store(false, Ordering::Relaxed);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut n = 0u64;
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..32 {
                    i = i.wrapping_add(1);
                    let key = IpKey::new(IpAddr::V4(Ipv4Addr::from(ip_of(i % PREFILL))));
                    if let Ok(m) = shared.read() {
                        std::hint::black_box(m.get(&key).is_some());
                    }
                }
                n += 32;
            }
            lookups.store(n, Ordering::Relaxed);
        });
        paced_writer(
            run_for,
            updates_per_s,
            |k| {
                if let Ok(mut m) = shared.write() {
                    m.insert(
                        IpKey::new(IpAddr::V4(Ipv4Addr::from(ip_of(k)))),
                        Arc::clone(&entry),
                    );
                }
            },
            || {},
        );
        stop.store(true, Ordering::Relaxed);
    });
    let rwlock = lookups.load(Ordering::Relaxed) as f64 / seconds;
    Ok((ours, rwlock))
}

/// What this machine does to a spinning thread: the longest gap between two consecutive clock
/// reads of a busy loop on the calling (control) core over `seconds`, and how many gaps
/// exceeded 1 ms. A held answer waits out any such stall of the control thread.
pub fn stall_probe(seconds: f64) -> (Duration, u64) {
    let t0 = Instant::now();
    let run_for = Duration::from_secs_f64(seconds);
    let (mut last, mut worst, mut over_1ms) = (t0, Duration::ZERO, 0u64);
    while last - t0 < run_for {
        let now = Instant::now();
        let gap = now - last;
        worst = worst.max(gap);
        over_1ms += u64::from(gap > Duration::from_millis(1));
        last = now;
    }
    (worst, over_1ms)
}
