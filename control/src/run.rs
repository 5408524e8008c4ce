//! `ferrowall run`: the appliance. Starts the EAL, sets up both ports with one queue pair per
//! worker, launches the workers on their lcores, and serves signals until told to stop; then
//! workers drain, ports stop, and the final counters are printed.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use dataplane::agent::{Agent, FleetVersions, link};
use dataplane::fqdn::AnswerResult;
use dataplane::worker::{Clock, PortQueues, Worker, WorkerStats};
use dataplane::{DropReason, Pipeline, PipelineConfig, PipelineStats, Policy, Side};
use dpdk::{Eal, Mempool, Port, PortConfig, PortStats};
use tracing::{info, warn};

use crate::admin::server::AdminServer;
use crate::cli::Failure;
use crate::controller::{Control, IDLE_SLEEP, SPIN_AFTER_WORK};
use crate::metrics::MetricsServer;
use crate::notify::notify;
use crate::shared::{PortSnapshot, Shared};

/// How often the control thread reads the ports' DPDK counters for `stats` and `/metrics`.
const PORT_STATS_EVERY: Duration = Duration::from_millis(250);

/// The allocator's setting for committing the arenas it reserves up front, read once at
/// process start.
const EAGER_COMMIT_VAR: &str = "MIMALLOC_ARENA_EAGER_COMMIT";

/// `ferrowall run` locks all its memory, which makes every committed page resident. mimalloc
/// reserves its first arena (1 GiB) before `main` and, by default, commits it whole, so unless
/// the operator chose otherwise the process starts over with arenas committed as they are used
/// (`MIMALLOC_ARENA_EAGER_COMMIT=0`): the same program, arguments and PID (`exec`). Memory it
/// commits later is still locked and faulted in at once (`MCL_FUTURE`). If the restart fails,
/// it goes on as it is.
pub fn restart_with_lazy_arenas() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os(EAGER_COMMIT_VAR).is_some() {
        return;
    }
    let mut args = std::env::args_os();
    let (Ok(exe), Some(arg0)) = (std::env::current_exe(), args.next()) else {
        return;
    };
    let err = std::process::Command::new(exe)
        .arg0(arg0)
        .args(args)
        .env(EAGER_COMMIT_VAR, "0")
        .exec();
    warn!(
        "could not restart with {EAGER_COMMIT_VAR}=0 ({err}): the allocator's whole first arena (1 GiB) will be resident"
    );
}

pub fn run(path: &Path) -> Result<(), Failure> {
    let cfg = config::load(path)?;
    let workers = usize::from(cfg.dpdk.workers);

    // SIGINT/SIGTERM ask for a clean stop; a second one exits at once. SIGHUP reloads.
    let term = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(sig, 1, Arc::clone(&term))
            .and_then(|_| signal_hook::flag::register(sig, Arc::clone(&term)))
            .context("installing signal handlers")?;
    }
    let hup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&hup))
        .context("installing signal handlers")?;

    let eal = Eal::init(&cfg.dpdk.eal_args).context("starting the DPDK EAL ([dpdk].eal_args)")?;
    // Every table below is reserved for its configured bound at start; locking makes it
    // resident now instead of page by page while traffic runs.
    if let Err(e) = dpdk::lock_all_memory() {
        warn!(
            "memory not locked (page faults may stall the data path; run as root or raise RLIMIT_MEMLOCK): {e}"
        );
    }
    let lcores = eal.worker_lcores();
    if lcores.len() < workers {
        return Err(Failure::Usage(format!(
            "{}: [dpdk] workers = {workers} needs {workers} worker lcores besides the main one, but the EAL has {} (give more with -l in [dpdk].eal_args)",
            path.display(),
            lcores.len()
        )));
    }

    let pool_size = mempool_size(&cfg.dpdk);
    let pool = Mempool::new(
        &eal,
        "ferrowall_mbufs",
        pool_size,
        256,
        dpdk::DEFAULT_DATA_ROOM,
    )
    .context("creating the mbuf pool")?;
    let port_cfg = PortConfig {
        rx_queues: cfg.dpdk.workers,
        tx_queues: cfg.dpdk.workers,
        rx_desc: cfg.dpdk.rx_desc,
        tx_desc: cfg.dpdk.tx_desc,
        promiscuous: true,
    };
    let mut ports = Vec::with_capacity(2);
    for (side, spec) in [
        (Side::Inside, &cfg.ports.inside),
        (Side::Outside, &cfg.ports.outside),
    ] {
        let mut port = Port::open(&eal, &spec.device)
            .with_context(|| format!("[ports.{side}] device {:?}", spec.device))?;
        let info = port.info().context("reading the port's device info")?;
        port.configure(&port_cfg, pool)
            .with_context(|| format!("configuring [ports.{side}] {:?}", spec.device))?;
        port.start()
            .with_context(|| format!("starting [ports.{side}] {:?}", spec.device))?;
        info!(
            port = side.as_str(),
            device = spec.device,
            driver = info.driver,
            mac = format_mac(&info.mac),
            queues = workers,
            rss = ?port.rss(),
            "port up"
        );
        ports.push(port);
    }

    let policy = Arc::new(Policy::compile(&cfg, 1, workers));
    info!(
        rules = policy.rules.len(),
        matcher_bytes = policy.matcher.memory_bytes(),
        generation = policy.generation,
        "policy compiled"
    );
    let clock = Clock::new(eal.tsc_hz());
    let admin_path = cfg.admin.socket.clone();
    let metrics_addr = cfg.metrics.listen;
    let (mut control, tables) = Control::new(path.to_owned(), cfg, policy, workers, clock);
    let shared = Arc::new(Shared::new(
        Arc::clone(&control.policy),
        workers,
        Arc::clone(control.learner.stats()),
        clock,
    ));
    let (calls_tx, calls_rx) = mpsc::channel();
    control.shared = Some(Arc::clone(&shared));
    control.calls = Some(calls_rx);
    let admin = AdminServer::bind(&admin_path)
        .with_context(|| format!("[admin] socket {}", admin_path.display()))?;
    let metrics = MetricsServer::bind(metrics_addr)
        .with_context(|| format!("[metrics] listen {metrics_addr}"))?;
    control.load_cache();
    let fleet = Arc::new(FleetVersions::new(workers));
    let mut admin_links = Vec::with_capacity(workers);
    let mut tables = tables;
    let stop = AtomicBool::new(false);
    let ops_stop = AtomicBool::new(false);
    let stats: &[Arc<WorkerStats>] = &shared.workers;
    let pstats: &[Arc<PipelineStats>] = &shared.pipelines;
    let seeds = std::hash::RandomState::new();
    let joined = eal.scope(|s| -> anyhow::Result<()> {
        // However this closure ends (an error after some workers launched included), the
        // workers are told to stop before the scope waits for them.
        let _stop_workers = SetOnDrop(&stop);
        let mut handles = Vec::with_capacity(workers);
        for (id, &lcore) in lcores.iter().take(workers).enumerate() {
            let q = u16::try_from(id)?;
            let (wl, ctl, admin) = link();
            control.links.push(ctl);
            admin_links.push(admin);
            let seed = std::hash::BuildHasher::hash_one(&seeds, id);
            let mut pipeline = Pipeline::new(
                PipelineConfig::from_config(&control.cfg, id, seed),
                Arc::clone(&control.policy),
                Arc::clone(&pstats[id]),
            );
            if let Some(t) = tables.next() {
                // The initial tables are empty: the replaced one is too.
                drop(pipeline.set_fqdn(t));
            }
            let mut worker = Worker {
                id,
                ports: [
                    PortQueues {
                        rx: ports[0].rx_queue(q)?,
                        tx: ports[0].tx_queue(q)?,
                    },
                    PortQueues {
                        rx: ports[1].rx_queue(q)?,
                        tx: ports[1].tx_queue(q)?,
                    },
                ],
                pool,
                burst: usize::from(control.cfg.dpdk.burst),
                pipeline,
                agent: Agent::new(
                    id,
                    wl,
                    Arc::clone(&fleet),
                    Arc::clone(&shared.worker_generations[id]),
                ),
                clock,
                stats: Arc::clone(&stats[id]),
            };
            let stop = &stop;
            let table_mib = worker.pipeline.flows().memory_bytes() as f64 / f64::from(1 << 20);
            handles.push(s.launch(lcore, move || worker.run(stop))?);
            info!(
                worker = id,
                lcore,
                flow_table_mib = format!("{table_mib:.1}"),
                "worker started"
            );
        }
        let ports = &ports;
        let refresh_ports = || {
            let snaps = Side::BOTH
                .into_iter()
                .zip(ports.iter())
                .map(|(side, p)| PortSnapshot {
                    side,
                    device: p.name().to_owned(),
                    stats: p.stats().unwrap_or_default(),
                })
                .collect();
            shared.set_ports(snaps);
        };
        refresh_ports();
        std::thread::scope(|ops| -> anyhow::Result<()> {
            // And the admin and metrics threads before this scope waits for them.
            let _stop_ops = SetOnDrop(&ops_stop);
            // The admin and metrics threads inherit the main lcore's CPU set: they share the
            // control core and never run on a worker's.
            let links = std::mem::take(&mut admin_links);
            let (sh, ops_stop) = (Arc::clone(&shared), &ops_stop);
            let admin_thread = std::thread::Builder::new()
                .name("ferrowall-admin".into())
                .spawn_scoped(ops, move || admin.serve(sh, links, calls_tx, ops_stop))?;
            let sh = Arc::clone(&shared);
            info!(listen = %metrics.local_addr()?, "metrics endpoint bound");
            let metrics_thread = std::thread::Builder::new()
                .name("ferrowall-metrics".into())
                .spawn_scoped(ops, move || {
                    if let Err(e) = metrics.serve(sh, ops_stop) {
                        warn!("metrics endpoint stopped: {e}");
                    }
                })?;
            info!("forwarding between inside and outside; SIGHUP reloads, SIGINT or SIGTERM stops");
            if let Err(e) = notify("READY=1") {
                warn!("telling systemd we are ready: {e}");
            }
            let mut last_work = Instant::now();
            let mut last_ports = Instant::now();
            while !term.load(Ordering::Relaxed) {
                if hup.swap(false, Ordering::Relaxed) {
                    let _ = control.reload();
                }
                if last_ports.elapsed() >= PORT_STATS_EVERY {
                    refresh_ports();
                    last_ports = Instant::now();
                }
                if control.poll() {
                    last_work = Instant::now();
                } else if last_work.elapsed() > SPIN_AFTER_WORK {
                    std::thread::sleep(IDLE_SLEEP);
                } else {
                    std::hint::spin_loop();
                }
            }
            let _ = notify("STOPPING=1");
            // The admin thread may wait on the control thread: keep answering until it is gone.
            ops_stop.store(true, Ordering::Relaxed);
            while !(admin_thread.is_finished() && metrics_thread.is_finished()) {
                control.poll();
                std::thread::sleep(IDLE_SLEEP);
            }
            Ok(())
        })?;
        info!("stopping: draining workers");
        stop.store(true, Ordering::Relaxed);
        let mut failed = None;
        for h in handles {
            let lcore = h.lcore();
            if let Err(e) = h.join() {
                warn!(lcore, "worker failed: {e}");
                failed = Some(e);
            }
        }
        control.poll();
        control.save_cache();
        failed.map_or(Ok(()), |e| Err(anyhow!(e)))
    });

    let mut port_stats = Vec::with_capacity(2);
    for (side, port) in Side::BOTH.into_iter().zip(ports.iter_mut()) {
        let st = port.stats().unwrap_or_default();
        if let Err(e) = port.stop() {
            warn!(port = side.as_str(), "stopping port: {e}");
        }
        port_stats.push((side, st));
    }
    print_final_counters(&port_stats, stats, pstats, control.learner.stats());
    joined?;
    Ok(())
}

/// Sets its flag when dropped: a scope's threads are told to stop on every way out of the
/// scope's closure, `?` included, so that the scope's join can not wait for ever.
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Enough mbufs for every RX and TX ring of both ports, the bursts in flight and the per-lcore
/// caches, unless `[dpdk].mempool_size` says otherwise.
fn mempool_size(d: &config::Dpdk) -> u32 {
    if d.mempool_size > 0 {
        return d.mempool_size;
    }
    let w = u32::from(d.workers);
    let rings = 2 * w * (u32::from(d.rx_desc) + u32::from(d.tx_desc));
    let in_flight = w * 4 * u32::from(d.burst) + (w + 1) * 256;
    // A mempool is most memory-efficient at 2^n - 1 elements.
    (rings + in_flight + 1024).next_power_of_two() - 1
}

fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[allow(clippy::print_stdout)]
fn print_final_counters(
    ports: &[(Side, PortStats)],
    workers: &[Arc<WorkerStats>],
    pipelines: &[Arc<PipelineStats>],
    learner: &dataplane::fqdn::LearnerStats,
) {
    println!("final counters");
    for (side, s) in ports {
        println!(
            "  port {side} rx {} tx {} rx_bytes {} tx_bytes {} imissed {} rx_nombuf {} ierrors {} oerrors {}",
            s.ipackets,
            s.opackets,
            s.ibytes,
            s.obytes,
            s.imissed,
            s.rx_nombuf,
            s.ierrors,
            s.oerrors
        );
    }
    for (id, w) in workers.iter().enumerate() {
        println!(
            "  worker {id} rx_inside {} rx_outside {} tx_inside {} tx_outside {} tx_refused {} busy_polls {} idle_polls {} cycles/packet {:.1}",
            w.rx[0].get(),
            w.rx[1].get(),
            w.tx[0].get(),
            w.tx[1].get(),
            w.tx_refused[0].get() + w.tx_refused[1].get(),
            w.busy_polls.get(),
            w.idle_polls.get(),
            w.cycles_per_packet()
        );
    }
    for (id, p) in pipelines.iter().enumerate() {
        let drops: Vec<String> = DropReason::ALL
            .iter()
            .filter(|r| p.drops[r.index()].get() > 0)
            .map(|r| format!("{} {}", r.as_str(), p.drops[r.index()].get()))
            .collect();
        println!(
            "  worker {id} flows {} flows_created {} bridged_arp {} bridged_nd {} rejects_sent {} drops [{}]",
            p.flows.get(),
            p.flows_created.get(),
            p.bridged_arp.get(),
            p.bridged_nd.get(),
            p.rejects_sent.get(),
            drops.join(", ")
        );
        println!(
            "  worker {id} dns queries {} handed {} held_now {} hold_timeouts {} screened_out [no_query {}, untrusted {}, malformed {}, no_match {}] fqdn_flows {}",
            p.dns_queries.get(),
            p.dns_handed.get(),
            p.dns_held.get(),
            p.dns_hold_timeouts.get(),
            p.dns_answers[AnswerResult::NoQuery.index()].get(),
            p.dns_answers[AnswerResult::Untrusted.index()].get(),
            p.dns_answers[AnswerResult::Malformed.index()].get(),
            p.dns_answers[AnswerResult::NoMatch.index()].get(),
            p.fqdn_flows.get(),
        );
    }
    println!(
        "  learner answers [learned {}, malformed {}, no_match {}] entries {} names {} evictions [ttl {}, per_name_cap {}, table_cap {}]",
        learner.answers[AnswerResult::Learned.index()].get(),
        learner.answers[AnswerResult::Malformed.index()].get(),
        learner.answers[AnswerResult::NoMatch.index()].get(),
        learner.entries.get(),
        learner.names.get(),
        learner.evictions[0].get(),
        learner.evictions[1].get(),
        learner.evictions[2].get(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of `run`'s scopes (a copy: `run` itself needs the EAL and two ports): a thread
    /// that runs until told to stop, then an error before the code that would tell it. The
    /// thread is told (without the guard it would run until its own 5 s limit, and the scope
    /// wait that long).
    #[test]
    fn an_error_after_threads_started_stops_them() {
        let stop = AtomicBool::new(false);
        let told = AtomicBool::new(false);
        let r = std::thread::scope(|s| -> anyhow::Result<()> {
            let _stop = SetOnDrop(&stop);
            s.spawn(|| {
                let started = Instant::now();
                while started.elapsed() < Duration::from_secs(5) {
                    if stop.load(Ordering::Relaxed) {
                        told.store(true, Ordering::Relaxed);
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            });
            Err(anyhow!("a later thread could not be spawned"))?;
            stop.store(true, Ordering::Relaxed);
            Ok(())
        });
        assert!(r.is_err());
        assert!(told.load(Ordering::Relaxed), "the thread was told to stop");
    }
}
