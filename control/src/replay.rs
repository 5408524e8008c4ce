//! `ferrowall replay`: the appliance's pipeline over a capture, offline.
//!
//! The same `Pipeline` as the workers, one packet at a time in capture order, with the capture's
//! timestamps as the clock and the ingress side taken from `[network].inside` (a packet whose
//! source address is inside entered on the inside port). The hash seed is fixed, so the same
//! input gives byte-identical output.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use dataplane::fqdn::{AnswerResult, Learner, LearnerStats, Limits};
use dataplane::pcap::{Link, Reader, Resolution, Writer};
use dataplane::pipeline::{Disposition, Effects, Released};
use dataplane::{Decision, Pipeline, PipelineConfig, PipelineStats, Policy, Side, Verdict};

use crate::cli::Failure;

/// What `replay` was asked to do.
#[derive(Debug)]
pub struct Args {
    /// The configuration.
    pub config: PathBuf,
    /// The capture to read.
    pub pcap: PathBuf,
    /// Where to write the packets that pass (and those ferrowall writes).
    pub out: Option<PathBuf>,
    /// Where to write the verdict log (JSON Lines).
    pub log: Option<PathBuf>,
    /// Where to write the FQDN table at the end.
    pub fqdn_out: Option<PathBuf>,
    /// Configurations to reload before given packet indexes, in index order.
    pub reloads: Vec<(u64, PathBuf)>,
}

/// Parses a `--reload-at INDEX:FILE` value.
pub fn parse_reload(s: &str) -> Result<(u64, PathBuf), String> {
    let (i, f) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?}: expected INDEX:FILE"))?;
    let i = i
        .parse()
        .map_err(|_| format!("{i:?} is not a packet index"))?;
    if f.is_empty() {
        return Err(format!("{s:?}: no file after the colon"));
    }
    Ok((i, PathBuf::from(f)))
}

/// A packet of the capture inside the pipeline: its index and its bytes as an Ethernet frame.
#[derive(Debug)]
struct Packet {
    index: u64,
    frame: Vec<u8>,
}

impl AsRef<[u8]> for Packet {
    fn as_ref(&self) -> &[u8] {
        &self.frame
    }
}

/// The port a packet entered on: inside if its source is in `[network].inside`.
fn ingress(frame: &[u8], inside: &[config::Cidr]) -> Side {
    let src = match dataplane::packet::parse(frame) {
        Ok(dataplane::packet::Frame::Ip(ip)) => Some(ip.src_ip()),
        // ARP: the sender's protocol address.
        Ok(dataplane::packet::Frame::Arp) => {
            dataplane::wire::ethernet::parse(frame).ok().and_then(|l2| {
                let a = frame.get(l2.l3_offset + 14..l2.l3_offset + 18)?;
                Some(IpAddr::from([a[0], a[1], a[2], a[3]]))
            })
        }
        Err(_) => raw_source(frame),
    };
    match src {
        Some(ip) if inside.iter().any(|c| c.contains(ip)) => Side::Inside,
        _ => Side::Outside,
    }
}

/// The source address of a packet the parser refused, read as far as it goes.
fn raw_source(frame: &[u8]) -> Option<IpAddr> {
    let l2 = dataplane::wire::ethernet::parse(frame).ok()?;
    let ip = frame.get(l2.l3_offset..)?;
    match ip.first()? >> 4 {
        4 => {
            let a = ip.get(12..16)?;
            Some(IpAddr::from([a[0], a[1], a[2], a[3]]))
        }
        6 => {
            let a: [u8; 16] = ip.get(8..24)?.try_into().ok()?;
            Some(IpAddr::from(a))
        }
        _ => None,
    }
}

/// Writes verdict lines in input order although held packets are decided later.
struct LogWriter {
    out: Option<BufWriter<File>>,
    next: u64,
    pending: BTreeMap<u64, String>,
}

impl LogWriter {
    fn put(&mut self, index: u64, line: String) -> std::io::Result<()> {
        if self.out.is_none() {
            return Ok(());
        }
        self.pending.insert(index, line);
        while let Some(line) = self.pending.remove(&self.next) {
            if let Some(w) = self.out.as_mut() {
                w.write_all(line.as_bytes())?;
                w.write_all(b"\n")?;
            }
            self.next += 1;
        }
        Ok(())
    }

    fn finish(mut self) -> std::io::Result<()> {
        if let Some(mut w) = self.out.take() {
            // Everything is decided by now; write what is left in index order regardless.
            for line in std::mem::take(&mut self.pending).into_values() {
                w.write_all(line.as_bytes())?;
                w.write_all(b"\n")?;
            }
            w.flush()?;
        }
        Ok(())
    }
}

fn ts_json(ts_ns: u64, res: Resolution) -> String {
    let (s, sub) = (ts_ns / 1_000_000_000, ts_ns % 1_000_000_000);
    match res {
        Resolution::Micro => format!("{s}.{:06}", sub / 1000),
        Resolution::Nano => format!("{s}.{sub:09}"),
    }
}

/// A JSON string, or `null`.
fn json_str(s: Option<&str>) -> String {
    s.map_or_else(
        || "null".to_owned(),
        |s| serde_json::Value::from(s).to_string(),
    )
}

/// One verdict log line, keys in the order of CONTRACT.md. `ts` is written as a decimal number
/// with the capture's precision (a float would lose nanoseconds).
fn log_line(
    index: u64,
    ts: &str,
    side: Side,
    d: &Decision,
    policies: &[Arc<Policy>],
    fqdn: Option<&str>,
) -> String {
    let policy = usize::try_from(d.generation.saturating_sub(1))
        .ok()
        .and_then(|g| policies.get(g));
    let rule = d
        .rule
        .and_then(|i| policy.and_then(|p| p.rules.get(i as usize)))
        .map(|r| &*r.name);
    let detail = d
        .reason
        .detail()
        .map(|x| format!(",\"detail\":\"{x}\""))
        .unwrap_or_default();
    format!(
        "{{\"index\":{index},\"ts\":{ts},\"ingress\":\"{}\",\"verdict\":\"{}\",\"rule\":{},\"reason\":\"{}\"{detail},\"fqdn\":{},\"name\":null}}",
        side.as_str(),
        d.verdict.as_str(),
        json_str(rule),
        d.reason.as_str(),
        json_str(fqdn),
    )
}

fn create(path: &Path) -> anyhow::Result<BufWriter<File>> {
    Ok(BufWriter::new(
        File::create(path).with_context(|| format!("creating {}", path.display()))?,
    ))
}

/// The state of one replay.
struct Replay {
    link: Link,
    res: Resolution,
    inside: Vec<config::Cidr>,
    pipeline: Pipeline<Packet>,
    learner: Learner,
    fx: Effects<Packet>,
    /// Every policy used so far, by generation - 1: log lines name rules of the deciding one.
    policies: Vec<Arc<Policy>>,
    out: Option<Writer<BufWriter<File>>>,
    log: LogWriter,
    /// Held packets: their original record and timestamp, by index.
    held: BTreeMap<u64, (Vec<u8>, u64)>,
    now: u64,
    total: u64,
    passed: u64,
}

impl Replay {
    /// Writes what the pipeline released or wrote.
    fn emit(&mut self) -> anyhow::Result<()> {
        for Released {
            packet,
            side,
            decision,
        } in self.fx.released.drain(..)
        {
            let (record, ts) = self
                .held
                .remove(&packet.index)
                .unwrap_or_else(|| (packet.frame.clone(), self.now));
            let line = log_line(
                packet.index,
                &ts_json(ts, self.res),
                side,
                &decision,
                &self.policies,
                None,
            );
            self.log.put(packet.index, line)?;
            if decision.verdict == Verdict::Allow {
                self.passed += 1;
                if let Some(w) = self.out.as_mut() {
                    w.write(self.now, &record)?;
                }
            }
        }
        for g in self.fx.generated.drain(..) {
            if let Some(w) = self.out.as_mut() {
                w.write(self.now, &self.link.from_ethernet(&g.frame))?;
            }
        }
        Ok(())
    }

    /// The control thread's part, inline: learn from the answers the pipeline handed over,
    /// publish the table at once, and release the answers' packets.
    fn learn(&mut self) {
        if self.fx.dns.is_empty() {
            return;
        }
        for h in std::mem::take(&mut self.fx.dns) {
            let r = self.learner.learn(&h.message, self.now);
            let version = self.publish();
            if let Some(token) = h.hold {
                self.pipeline.resolve_hold(
                    token,
                    if r == AnswerResult::Learned {
                        version
                    } else {
                        0
                    },
                );
            }
        }
        let v = self.pipeline.fqdn().version();
        self.pipeline.maintain(self.now, || v, &mut self.fx);
    }

    /// Housekeeping at time `now`: expiry in the learner and the pipeline.
    fn tick(&mut self, now: u64) -> anyhow::Result<()> {
        self.now = self.now.max(now);
        self.learner.expire(self.now);
        self.publish();
        let v = self.pipeline.fqdn().version();
        self.pipeline.maintain(self.now, || v, &mut self.fx);
        self.emit()
    }

    /// What the control thread's publication does, at once: the learner's changes become the
    /// pipeline's table (the old one goes back to the learner). Returns the learner's version.
    fn publish(&mut self) -> u64 {
        let version = self.learner.commit();
        if let Some(table) = self.learner.publish(0) {
            let old = self.pipeline.set_fqdn(table);
            self.learner.returned(0, old);
        }
        version
    }

    /// One packet of the capture.
    fn step(&mut self, rec: dataplane::pcap::Record) -> anyhow::Result<()> {
        let index = self.total;
        self.total += 1;
        let frame = self.link.to_ethernet(&rec.data);
        let side = ingress(&frame, &self.inside);
        let (disp, decision) =
            self.pipeline
                .process(Packet { index, frame }, side, self.now, &mut self.fx);
        let fqdn = self
            .pipeline
            .last_attribution()
            .map(|a| a.name().to_owned());
        let line = || {
            log_line(
                index,
                &ts_json(rec.ts_ns, self.res),
                side,
                &decision,
                &self.policies,
                fqdn.as_deref(),
            )
        };
        match disp {
            Disposition::Held => {
                self.held.insert(index, (rec.data, rec.ts_ns));
            }
            Disposition::Pass(_) => {
                self.passed += 1;
                self.log.put(index, line())?;
                if let Some(w) = self.out.as_mut() {
                    w.write_record(rec.ts_ns, rec.orig_len, &rec.data)?;
                }
            }
            Disposition::Drop(_) => self.log.put(index, line())?,
        }
        self.learn();
        self.emit()
    }
}

/// Runs `ferrowall replay`.
pub fn replay(args: &Args) -> Result<(), Failure> {
    let cfg = config::load(&args.config)?;
    let file = File::open(&args.pcap)
        .map_err(|e| Failure::Usage(format!("{}: cannot read: {e}", args.pcap.display())))?;
    let mut reader = Reader::new(BufReader::new(file))
        .map_err(|e| Failure::Usage(format!("{}: {e}", args.pcap.display())))?;
    let link = Link::new(reader.linktype())
        .map_err(|e| Failure::Usage(format!("{}: {e}", args.pcap.display())))?;
    let res = reader.resolution();

    let policy = Arc::new(Policy::compile(&cfg, 1, 1));
    // Reloads, checked up front so that a bad file fails before any output is written.
    // Generations are numbered in the order the reloads happen (by packet index, then in the
    // order given), whatever the order on the command line: the log names rules by them.
    let mut order: Vec<&(u64, PathBuf)> = args.reloads.iter().collect();
    order.sort_by_key(|(at, _)| *at);
    let mut reloads = Vec::with_capacity(order.len());
    for (i, (at, path)) in order.into_iter().enumerate() {
        let c = config::load(path)?;
        let generation = u64::try_from(i).unwrap_or(u64::MAX - 2) + 2;
        reloads.push((
            *at,
            Arc::new(Policy::compile(&c, generation, 1)),
            Limits::from_config(&c.dns),
        ));
    }
    let mut reloads = reloads.into_iter().peekable();

    let stats = Arc::new(PipelineStats::default());
    let mut pipeline: Pipeline<Packet> = Pipeline::new(
        PipelineConfig::from_config(&cfg, 0, 0),
        Arc::clone(&policy),
        Arc::clone(&stats),
    );
    let (learner, tables) = Learner::new(
        Limits::from_config(&cfg.dns),
        Arc::clone(&policy),
        1,
        Arc::new(LearnerStats::default()),
    );
    if let Some(t) = tables.into_iter().next() {
        drop(pipeline.set_fqdn(t));
    }
    let out = match &args.out {
        Some(p) => Some(
            Writer::new(create(p)?, reader.linktype(), res).context("writing the pcap header")?,
        ),
        None => None,
    };
    let mut r = Replay {
        link,
        res,
        inside: cfg.network.inside.clone(),
        pipeline,
        learner,
        fx: Effects::default(),
        policies: vec![policy],
        out,
        log: LogWriter {
            out: args.log.as_deref().map(create).transpose()?,
            next: 0,
            pending: BTreeMap::new(),
        },
        held: BTreeMap::new(),
        now: 0,
        total: 0,
        passed: 0,
    };

    while let Some(rec) = reader
        .next_record()
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.pcap.display()))?
    {
        // The capture's clock never goes backwards for the pipeline.
        r.tick(rec.ts_ns)?;
        while let Some((_, p, limits)) = reloads.next_if(|(at, _, _)| *at <= r.total) {
            r.pipeline.set_policy(Arc::clone(&p));
            r.learner.set_limits(limits);
            r.learner.set_policy(Arc::clone(&p));
            r.policies.push(p);
        }
        r.step(rec)?;
    }
    // The end of the capture: held fragments never saw their first fragment, held answers go.
    let end = r.now;
    r.pipeline.maintain(u64::MAX, || u64::MAX, &mut r.fx);
    r.now = end;
    r.emit()?;
    r.log.finish()?;
    if let Some(w) = r.out.take() {
        w.finish()?;
    }
    if let Some(p) = &args.fqdn_out {
        let mut counts = crate::fqdn::FlowCounts::new();
        crate::fqdn::count_flows(r.pipeline.flows(), &mut counts);
        let policy = r
            .policies
            .last()
            .map(Arc::clone)
            .unwrap_or_else(|| Arc::clone(r.pipeline.policy()));
        let rows = crate::fqdn::rows(r.learner.bindings(), &policy, r.now, &counts, None);
        let text = serde_json::to_string_pretty(&rows).context("formatting the FQDN table")?;
        std::fs::write(p, text + "\n").with_context(|| format!("writing {}", p.display()))?;
    }
    eprintln!(
        "{}: {} packets, {} passed, {} dropped, {} flows created, {} DNS answers learned",
        args.pcap.display(),
        r.total,
        r.passed,
        r.total - r.passed,
        stats.flows_created.get(),
        r.learner.stats().answers[AnswerResult::Learned.index()].get(),
    );
    Ok(())
}
