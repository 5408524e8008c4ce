//! `ferrowall run`: the appliance. Starts the EAL, sets up both ports with one queue pair per
//! worker, launches the workers on their lcores, and serves signals until told to stop; then
//! workers drain, ports stop, and the final counters are printed.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, anyhow};
use dataplane::worker::{
    Clock, ControlLink, FromWorker, PortQueues, ToWorker, Worker, WorkerStats, link,
};
use dataplane::{DropReason, Pipeline, PipelineConfig, PipelineStats, Policy, Side};
use dpdk::{Eal, Mempool, Port, PortConfig, PortStats};
use tracing::{error, info, warn};

use crate::cli::Failure;

/// How often the main lcore looks at its signal flags.
const CONTROL_TICK: Duration = Duration::from_millis(10);

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
    let mut control = Control {
        path: path.to_owned(),
        cfg,
        policy,
        links: Vec::with_capacity(workers),
    };
    let stop = AtomicBool::new(false);
    let stats: Vec<Arc<WorkerStats>> = (0..workers).map(|_| Arc::default()).collect();
    let pstats: Vec<Arc<PipelineStats>> = (0..workers).map(|_| Arc::default()).collect();
    let tsc_hz = eal.tsc_hz();
    let seeds = std::hash::RandomState::new();
    let joined = eal.scope(|s| -> anyhow::Result<()> {
        let mut handles = Vec::with_capacity(workers);
        for (id, &lcore) in lcores.iter().take(workers).enumerate() {
            let q = u16::try_from(id)?;
            let (ctl, wl) = link();
            control.links.push(ctl);
            let seed = std::hash::BuildHasher::hash_one(&seeds, id);
            let pipeline = Pipeline::new(
                PipelineConfig::from_config(&control.cfg, id, seed),
                Arc::clone(&control.policy),
                Arc::clone(&pstats[id]),
            );
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
                link: wl,
                clock: Clock::new(tsc_hz),
                stats: Arc::clone(&stats[id]),
            };
            let stop = &stop;
            handles.push(s.launch(lcore, move || worker.run(stop))?);
            info!(worker = id, lcore, "worker started");
        }
        info!("forwarding between inside and outside; SIGHUP reloads, SIGINT or SIGTERM stops");
        while !term.load(Ordering::Relaxed) {
            if hup.swap(false, Ordering::Relaxed) {
                control.reload();
            }
            control.collect_retired();
            std::thread::sleep(CONTROL_TICK);
        }
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
        control.collect_retired();
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
    print_final_counters(&port_stats, &stats, &pstats);
    joined?;
    Ok(())
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

/// The control thread's state while the appliance runs.
struct Control {
    path: std::path::PathBuf,
    cfg: config::Config,
    policy: Arc<Policy>,
    links: Vec<ControlLink>,
}

impl Control {
    /// Re-reads the configuration and, if it is valid, publishes the new policy to every
    /// worker. On error the running policy stays.
    fn reload(&mut self) {
        let cfg = match config::load(&self.path) {
            Ok(c) => c,
            Err(e) => {
                error!("reload refused, the running policy stays: {e}");
                return;
            }
        };
        if cfg.dpdk != self.cfg.dpdk
            || cfg.ports != self.cfg.ports
            || cfg.flows.capacity != self.cfg.flows.capacity
        {
            warn!(
                "reload: [dpdk], [ports] and [flows].capacity take effect at the next start only"
            );
        }
        let generation = self.policy.generation + 1;
        let policy = Arc::new(Policy::compile(&cfg, generation, self.links.len()));
        for l in &mut self.links {
            // A full inbox means a worker is stuck; it would get the next reload instead.
            if l.to_worker
                .push(ToWorker::Policy(Arc::clone(&policy)))
                .is_err()
            {
                warn!(
                    "a worker's inbox is full; it keeps generation {}",
                    self.policy.generation
                );
            }
        }
        info!(
            generation,
            rules = policy.rules.len(),
            "configuration reloaded"
        );
        self.policy = policy;
        self.cfg = cfg;
    }

    /// Drops what workers handed back.
    fn collect_retired(&mut self) {
        for l in &mut self.links {
            while let Ok(FromWorker::Retired(p)) = l.from_worker.pop() {
                drop(p);
            }
        }
    }
}

#[allow(clippy::print_stdout)]
fn print_final_counters(
    ports: &[(Side, PortStats)],
    workers: &[Arc<WorkerStats>],
    pipelines: &[Arc<PipelineStats>],
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
    }
}
