//! What listing every flow costs traffic: a worker with 1M established flows forwards while the
//! main lcore lists all of them, over and over, through the worker's admin ring exactly as the
//! admin socket does (bounded chunks served between bursts, each row turned into the JSON of
//! `flows --json`), against the same worker with nobody listing. Runs alternate.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use dataplane::agent::{Agent, FleetVersions, link};
use dataplane::pipeline::{Disposition, Effects};
use dataplane::{Pipeline, PipelineConfig, PipelineStats, Policy};
use dpdk::Mbuf;

use perf::workload::Feeder;

use crate::{Figure, Rig, Sample};

/// Flows in the table.
pub const FLOWS: u32 = 1_000_000;

/// Result of [`listing`].
pub struct Listing {
    /// Forwarding with nobody listing.
    pub quiet: Figure,
    /// Forwarding while the flows are listed over and over.
    pub listing: Figure,
    /// Median over alternating pairs of (quiet cycles per packet / listing cycles per packet).
    pub ratio: f64,
    /// Complete listings during the measured runs, and the median time one took.
    pub listings: u64,
    /// Median duration of one complete listing.
    pub listing_time: Duration,
    /// Rows in the last complete listing.
    pub rows: u64,
}

struct State<'e> {
    pipeline: Pipeline<Mbuf<'e>>,
    agent: Agent,
    fx: Effects<Mbuf<'e>>,
    feeder: Feeder,
}

/// Runs the comparison.
pub fn listing<'e>(rig: &mut Rig<'_, 'e>, pool: &'e dpdk::Mempool<'e>) -> Result<Listing> {
    let cfg = crate::config_with(
        FLOWS as usize + 65_536,
        "[[rule]]\nname = \"web\"\naction = \"allow\"\nproto = \"tcp\"\ndst_ports = [\"443\"]\n",
    )?;
    let policy = Arc::new(Policy::compile(&cfg, 1, 1));
    let (wl, _control, mut admin) = link();
    let pipeline = Pipeline::new(
        PipelineConfig::from_config(&cfg, 0, 7),
        policy,
        Arc::new(PipelineStats::default()),
    );
    let mut st = State {
        pipeline,
        agent: Agent::new(0, wl, Arc::new(FleetVersions::new(1)), Arc::default()),
        fx: Effects::default(),
        feeder: Feeder::new(FLOWS),
    };
    crate::warm_up(&mut st.pipeline, pool, &mut st.feeder, FLOWS)?;
    let start = Instant::now();
    let per_burst =
        |st: &mut State<'e>, rx: &mut dpdk::Burst<'e>, side, tx: &mut dpdk::Burst<'e>| {
            for m in rx.as_mut_slice() {
                st.feeder.write(m.data_mut());
            }
            let now = u64::try_from(start.elapsed().as_nanos()).unwrap_or(0);
            st.pipeline
                .process_burst(rx.drain(), side, now, &mut st.fx, |d, _| {
                    if let Disposition::Pass(m) = d {
                        let _ = tx.push(m);
                    }
                });
            st.pipeline.maintain(now, || u64::MAX, &mut st.fx);
            st.agent.quiescent(&mut st.pipeline, &mut st.fx, now);
        };

    let mut id = 0u64;
    let (mut quiet, mut busy, mut ratios, mut times) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut rows = 0u64;
    for _ in 0..rig.runs {
        let q: Sample = rig.sample(&mut st, &per_burst, &mut |deadline| {
            std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
        })?;
        let b: Sample = rig.sample(&mut st, &per_burst, &mut |deadline| {
            // List until the deadline; a listing still running then is abandoned.
            while Instant::now() < deadline {
                id += 1;
                let t0 = Instant::now();
                let mut n = 0u64;
                let mut out = Vec::with_capacity(1 << 16);
                let done = admin.list_flows(
                    id,
                    |row| {
                        n += 1;
                        out.clear();
                        let _ = serde_json::to_writer(
                            &mut out,
                            &control::admin::proto::FlowJson {
                                worker: row.worker,
                                proto: control::admin::proto::proto_name(row.proto),
                                src: std::net::SocketAddr::new(row.src.0, row.src.1).to_string(),
                                dst: std::net::SocketAddr::new(row.dst.0, row.dst.1).to_string(),
                                side: row.side.as_str().into(),
                                state: row.state.as_str().into(),
                                verdict: "allow".into(),
                                rule: row.rule.as_deref().map(str::to_owned),
                                fqdn: row.fqdn,
                                packets: row.packets,
                                bytes: row.bytes,
                                age_s: 0.0,
                                idle_s: 0.0,
                            },
                        );
                        std::hint::black_box(&out);
                    },
                    || {
                        std::thread::sleep(Duration::from_micros(20));
                        Instant::now() < deadline
                    },
                );
                if done.is_ok() {
                    times.push(t0.elapsed());
                    rows = n;
                }
            }
        })?;
        ratios.push(q.cycles_per_packet() / b.cycles_per_packet());
        quiet.push(q);
        busy.push(b);
    }
    ratios.sort_by(f64::total_cmp);
    times.sort();
    let (qf, bf) = (crate::median(&quiet), crate::median(&busy));
    crate::report("established 1M flows, nobody listing", qf);
    crate::report("established 1M flows, listing all flows", bf);
    let out = Listing {
        quiet: qf,
        listing: bf,
        ratio: ratios[ratios.len() / 2],
        listings: times.len() as u64,
        listing_time: times.get(times.len() / 2).copied().unwrap_or_default(),
        rows,
    };
    println!(
        "listing: {} complete listings of {} flows, median {:.2?} each; throughput while listing / without (median of pairs): {:.3}",
        out.listings, out.rows, out.listing_time, out.ratio
    );
    Ok(out)
}
