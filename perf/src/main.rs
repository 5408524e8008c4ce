//! ferrowall benchmarks. `cargo run -p perf --release -- forward` measures the bare RX->TX
//! forwarding floor on `net_null`; every later benchmark runs beside it in the same process and
//! reports its cost above the floor. Results (median of repeated runs) go to perf/RESULTS.md.

mod results;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use dataplane::worker::{PortQueues, Worker, WorkerStats};
use dpdk::{Eal, Mempool, Port, PortConfig, tsc};

#[derive(Parser)]
#[command(about = "ferrowall benchmarks")]
struct Args {
    #[command(subcommand)]
    bench: Bench,
    /// Repeats of each measurement; the median is reported.
    #[arg(long, default_value_t = 7)]
    runs: usize,
    /// Length of one measurement.
    #[arg(long, default_value = "1", value_name = "SECONDS")]
    seconds: f64,
    /// Do not rewrite perf/RESULTS.md.
    #[arg(long)]
    no_write: bool,
}

#[derive(Subcommand, Clone, Copy)]
enum Bench {
    /// Bare RX->TX forwarding of 64-byte packets between two net_null ports, one worker.
    Forward,
}

/// One measurement of a worker loop.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Packets received by the worker.
    pub packets: u64,
    /// TSC cycles the worker ran.
    pub cycles: u64,
    /// Wall-clock time the worker ran.
    pub elapsed: Duration,
}

impl Sample {
    fn mpps(&self) -> f64 {
        self.packets as f64 / self.elapsed.as_secs_f64() / 1e6
    }

    fn cycles_per_packet(&self) -> f64 {
        self.cycles as f64 / self.packets.max(1) as f64
    }
}

/// Median of the samples by cycles per packet (and the Mpps of the same samples' median).
pub fn median(samples: &[Sample]) -> (f64, f64) {
    let mut cpp: Vec<f64> = samples.iter().map(Sample::cycles_per_packet).collect();
    let mut mpps: Vec<f64> = samples.iter().map(Sample::mpps).collect();
    cpp.sort_by(f64::total_cmp);
    mpps.sort_by(f64::total_cmp);
    (cpp[cpp.len() / 2], mpps[mpps.len() / 2])
}

const EAL_ARGS: &[&str] = &[
    "-l",
    "0-1",
    "--no-huge",
    "-m",
    "1024",
    "--no-pci",
    "--no-shconf",
    "--log-level=lib.eal:error",
    "--vdev=net_null0,size=64",
    "--vdev=net_null1,size=64",
];

fn main() -> Result<()> {
    let args = Args::parse();
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let eal = Eal::init(EAL_ARGS).context("starting the EAL")?;
    let pool = Mempool::new(&eal, "perf_pool", 16383, 256, dpdk::DEFAULT_DATA_ROOM)?;
    let mut ports = Vec::new();
    for name in ["net_null0", "net_null1"] {
        let mut p = Port::open(&eal, name)?;
        p.configure(&PortConfig::default(), pool)?;
        p.start()?;
        ports.push(p);
    }
    let lcore = *eal
        .worker_lcores()
        .first()
        .context("no worker lcore (-l 0-1)")?;
    let duration = Duration::from_secs_f64(args.seconds);

    match args.bench {
        Bench::Forward => {
            let samples: Vec<Sample> = (0..args.runs)
                .map(|_| measure_forward(&eal, lcore, &ports, duration))
                .collect::<Result<_>>()?;
            let (cpp, mpps) = median(&samples);
            println!(
                "forward: {mpps:.2} Mpps, {cpp:.1} cycles/packet (median of {} runs of {:.1} s)",
                args.runs, args.seconds
            );
            if !args.no_write {
                let body = format!(
                    "| benchmark | Mpps | cycles/packet | above floor |\n|---|---|---|---|\n| bare forwarding, 64 B, net_null, 1 worker | {mpps:.2} | {cpp:.1} | 0 (the floor) |\n\nMedian of {} runs of {:.1} s; TSC at {:.2} GHz.\n",
                    args.runs,
                    args.seconds,
                    eal.tsc_hz() as f64 / 1e9
                );
                results::write_section("forward", "Bare forwarding floor", &body)?;
            }
        }
    }
    Ok(())
}

/// Runs the plain forwarding worker on `lcore` for `duration` and measures it.
fn measure_forward(
    eal: &Eal,
    lcore: u32,
    ports: &[Port<'_>],
    duration: Duration,
) -> Result<Sample> {
    let stop = AtomicBool::new(false);
    let stats = Arc::new(WorkerStats::default());
    let mut worker = Worker {
        id: 0,
        ports: [
            PortQueues {
                rx: ports[0].rx_queue(0)?,
                tx: ports[0].tx_queue(0)?,
            },
            PortQueues {
                rx: ports[1].rx_queue(0)?,
                tx: ports[1].tx_queue(0)?,
            },
        ],
        burst: 32,
        stats: Arc::clone(&stats),
    };
    let (cycles, elapsed) = eal.scope(|s| -> Result<(u64, Duration)> {
        let h = s.launch(lcore, || {
            let (t0, c0) = (Instant::now(), tsc());
            worker.run(&stop);
            (tsc() - c0, t0.elapsed())
        })?;
        std::thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
        Ok(h.join()?)
    })?;
    Ok(Sample {
        packets: stats.packets(),
        cycles,
        elapsed,
    })
}
