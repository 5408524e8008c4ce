//! The pipeline on plain buffers (no DPDK), for counting instructions under callgrind: a count
//! does not depend on what else the machine is doing, so it shows small changes the noisy
//! cycle benchmarks can not. `make icount` runs it twice per workload and prints the
//! difference per packet (the setup cancels out).
//!
//! Usage: `icount established FLOWS PASSES` (every flow's packet PASSES times, after a pass
//! that creates them), `icount sol FLOWS PASSES` (the same through the speed-of-light path,
//! `perf::sol`), `icount newflows RULES PACKETS` (a new flow on every packet, with
//! RULES random rules), or `icount learner fresh|refresh ANSWERS` (the FQDN learner learning
//! ANSWERS DNS answers for 50k names, each with new addresses or repeating them; the clock
//! advances 1 us per answer), or `icount dns PAIRS` (a DNS query and its answer through the
//! worker's pipeline, PAIRS times, each query from a new client port; held answers are
//! released as the learner would). Prints how many packets passed (addresses learned).

use std::collections::VecDeque;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use dataplane::pipeline::{Disposition, Effects};
use dataplane::{Pipeline, PipelineConfig, PipelineStats, Policy, Side};
use perf::dnsload::{answers, compiled, dns_frame, learn_all, learner};
use perf::workload::{Feeder, config_with, random_rules};

// The allocator the appliance runs with (control/src/main.rs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BURST: usize = 32;

fn pipeline(cfg: &config::Config) -> Pipeline<Vec<u8>> {
    Pipeline::new(
        PipelineConfig::from_config(cfg, 0, 0x5eed),
        Arc::new(Policy::compile(cfg, 1, 1)),
        Arc::new(PipelineStats::default()),
    )
}

/// One burst through the pipeline, returning how many packets passed or were held. Never
/// inlined: `make icount` counts the instructions inside it (the DNS workload).
#[inline(never)]
fn decide_burst(
    p: &mut Pipeline<Vec<u8>>,
    burst: Vec<Vec<u8>>,
    side: Side,
    fx: &mut Effects<Vec<u8>>,
) -> u64 {
    let mut passed = 0;
    p.process_burst(burst, side, 1, fx, |d, _| {
        if matches!(d, Disposition::Pass(_) | Disposition::Held) {
            passed += 1;
        }
    });
    passed
}

fn arg(args: &[String], i: usize, what: &str) -> Result<u32> {
    args.get(i)
        .with_context(|| format!("missing {what}"))?
        .parse()
        .with_context(|| format!("{what}: not a number"))
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let mut passed = 0u64;
    let mut handed = 0u64;
    match args.get(1).map(String::as_str) {
        Some("established") => {
            let (flows, passes) = (arg(&args, 2, "FLOWS")?, arg(&args, 3, "PASSES")?);
            let rule = "[[rule]]\nname = \"web\"\naction = \"allow\"\nproto = \"tcp\"\ndst_ports = [\"443\"]\n";
            let mut p = pipeline(&config_with(flows as usize + 4096, rule)?);
            let mut feeder = Feeder::new(flows);
            let mut ring: VecDeque<Vec<u8>> = (0..flows)
                .map(|_| {
                    let mut f = vec![0u8; 60];
                    feeder.write(&mut f);
                    f
                })
                .collect();
            let mut fx = Effects::default();
            let mut burst = Vec::with_capacity(BURST);
            // Pass 0 creates the flows; every later pass sends each flow one packet.
            for pass in 0..=passes {
                for _ in 0..(flows as usize).div_ceil(BURST) {
                    let n = ring.len().min(BURST);
                    burst.extend(ring.drain(..n));
                    p.process_burst(
                        burst.drain(..),
                        Side::Inside,
                        u64::from(pass),
                        &mut fx,
                        |d, _| {
                            if let Disposition::Pass(m) = d {
                                passed += 1;
                                ring.push_back(m);
                            }
                        },
                    );
                }
            }
        }
        Some("sol") => {
            // As `established` (the same frames, ring and bursts), through `perf::sol`.
            let (flows, passes) = (arg(&args, 2, "FLOWS")?, arg(&args, 3, "PASSES")?);
            let mut t = perf::sol::SolTable::new(flows as usize, u64::MAX, 0x5eed);
            let mut feeder = Feeder::new(flows);
            let mut ring: VecDeque<Vec<u8>> = (0..flows)
                .map(|_| {
                    let mut f = vec![0u8; 60];
                    feeder.write(&mut f);
                    t.insert(&f, 0);
                    f
                })
                .collect();
            let mut burst = Vec::with_capacity(BURST);
            for pass in 0..=passes {
                for _ in 0..(flows as usize).div_ceil(BURST) {
                    let n = ring.len().min(BURST);
                    burst.extend(ring.drain(..n));
                    let pass = t.burst(&burst, u64::from(pass));
                    for (i, m) in burst.drain(..).enumerate() {
                        if pass >> i & 1 == 1 {
                            passed += 1;
                            ring.push_back(m);
                        }
                    }
                }
            }
        }
        Some("newflows") => {
            let (rules, packets) = (arg(&args, 2, "RULES")?, arg(&args, 3, "PACKETS")?);
            let cfg = config_with(1 << 20, &random_rules(rules as usize, 42))?;
            let mut p = pipeline(&cfg);
            let mut feeder = Feeder::new(u32::MAX);
            let mut burst: Vec<Vec<u8>> = (0..BURST).map(|_| vec![0u8; 60]).collect();
            let mut back = Vec::with_capacity(BURST);
            let mut fx = Effects::default();
            for _ in 0..(packets as usize).div_ceil(BURST) {
                burst.iter_mut().for_each(|f| feeder.write(f));
                p.process_burst(burst.drain(..), Side::Inside, 1, &mut fx, |d, _| match d {
                    Disposition::Pass(m) => {
                        passed += 1;
                        back.push(m);
                    }
                    Disposition::Drop(m) => back.push(m),
                    Disposition::Held => {}
                });
                std::mem::swap(&mut burst, &mut back);
                burst.resize_with(BURST, || vec![0u8; 60]);
            }
        }
        Some("dns") => {
            // Queries inside -> out, their answers back, in bursts of 16 of each; a new
            // client port (a new flow) per query, as resolvers' clients do.
            let pairs = arg(&args, 2, "PAIRS")?;
            let (cfg, policy) = compiled()?;
            let mut p = Pipeline::new(
                PipelineConfig::from_config(&cfg, 0, 0x5eed),
                policy,
                Arc::new(PipelineStats::default()),
            );
            let mut fx = Effects::default();
            let sport = |i: u32| 1024 + u16::try_from(i % 60_000).unwrap_or(0);
            for group in (0..pairs).collect::<Vec<_>>().chunks(BURST / 2) {
                for (side, answers) in [(Side::Inside, false), (Side::Outside, true)] {
                    let burst: Vec<Vec<u8>> = group
                        .iter()
                        .map(|&i| dns_frame(sport(i), i, answers))
                        .collect();
                    passed += decide_burst(&mut p, burst, side, &mut fx);
                }
                // The learner's answer to each hold (every worker is at version 1), as the
                // worker's agent relays it; the released answers leave.
                for h in fx.dns.drain(..) {
                    handed += 1;
                    if let Some(token) = h.hold {
                        p.resolve_hold(token, 1);
                    }
                }
                p.maintain(1, || 1, &mut fx);
                fx.released.clear();
            }
        }
        Some("learner") => {
            let fresh = match args.get(2).map(String::as_str) {
                Some("fresh") => true,
                Some("refresh") => false,
                _ => bail!("learner: fresh or refresh"),
            };
            let messages = answers(arg(&args, 3, "ANSWERS")?, 50_000, fresh);
            let (mut l, mut table) = learner()?;
            let mut now = 0u64;
            learn_all(&mut l, &mut table, &messages, || {
                now += 1_000;
                now
            });
            passed = l.len() as u64;
        }
        _ => bail!(
            "usage: icount established FLOWS PASSES | icount sol FLOWS PASSES | icount newflows RULES PACKETS | icount dns PAIRS | icount learner fresh|refresh ANSWERS"
        ),
    }
    println!("{passed} packets passed, {handed} DNS answers handed to the learner");
    Ok(())
}
