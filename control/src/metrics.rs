//! `GET /metrics`: the counters of [`Shared`] in the Prometheus/OpenMetrics text format, encoded by
//! the `prometheus-client` crate at scrape time, served by a small HTTP/1.1 server (hyper) on
//! its own thread.
//!
//! Nothing is registered ahead: a [`Collector`] reads every worker's counters when scraped and
//! sums them, so the packet path never writes anything shared. Clients that send a malformed
//! request get an HTTP error; clients that are slow to send their request are cut off after
//! [`HEADER_TIMEOUT`], and a whole exchange is bounded by [`EXCHANGE_TIMEOUT`]; at most
//! [`MAX_CONNECTIONS`] are served at once.

use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use dataplane::DropReason;
use dataplane::counter::LATENCY_BUCKETS_NS;
use dataplane::fqdn::{AnswerResult, Eviction};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use tracing::{info, warn};

use crate::admin::server::dns_answers;
use crate::shared::Shared;

/// How long a client may take to send its request head.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one connection may last in all.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections served at once; beyond, new ones wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 16;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Reads [`Shared`] at every scrape.
#[derive(Debug)]
struct Ferrowall(Arc<Shared>);

/// One counter family: name (without `_total`), help, and its labelled values.
fn counters(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    values: &[(Vec<(&str, String)>, u64)],
) -> fmt::Result {
    let mut family = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in values {
        ConstCounter::new(*v).encode(family.encode_family(labels)?)?;
    }
    Ok(())
}

/// One gauge family.
fn gauges(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    values: &[(Vec<(&str, String)>, i64)],
) -> fmt::Result {
    let mut family = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in values {
        ConstGauge::new(*v).encode(family.encode_family(labels)?)?;
    }
    Ok(())
}

fn gauge_value(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A histogram summed over workers at scrape time (buckets of [`LATENCY_BUCKETS_NS`]).
#[derive(Debug)]
struct SummedHistogram {
    sum_s: f64,
    count: u64,
    buckets: Vec<(f64, u64)>,
}

impl EncodeMetric for SummedHistogram {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> fmt::Result {
        encoder.encode_histogram::<NoLabelSet>(self.sum_s, self.count, &self.buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

impl Collector for Ferrowall {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> fmt::Result {
        let sh = &self.0;
        let label = |k: &'static str, v: String| vec![(k, v)];

        let info = [(vec![("version", sh.version.to_owned())], 1)];
        gauges(
            &mut enc,
            "ferrowall_build_info",
            "The running build (always 1).",
            &info,
        )?;

        // Ports.
        let ports = sh.ports();
        let mut packets = Vec::new();
        let mut bytes = Vec::new();
        let mut missed = Vec::new();
        let mut errors = Vec::new();
        for p in &ports {
            let port = p.side.as_str().to_owned();
            let dir = |d: &str| vec![("port", port.clone()), ("direction", d.to_owned())];
            packets.push((dir("rx"), p.stats.ipackets));
            packets.push((dir("tx"), p.stats.opackets));
            bytes.push((dir("rx"), p.stats.ibytes));
            bytes.push((dir("tx"), p.stats.obytes));
            errors.push((dir("rx"), p.stats.ierrors));
            errors.push((dir("tx"), p.stats.oerrors));
            missed.push((
                label("port", port.clone()),
                p.stats.imissed + p.stats.rx_nombuf,
            ));
        }
        counters(
            &mut enc,
            "ferrowall_port_packets",
            "Packets received and sent by each port (DPDK counters, read every 250 ms).",
            &packets,
        )?;
        counters(
            &mut enc,
            "ferrowall_port_bytes",
            "Bytes received and sent by each port.",
            &bytes,
        )?;
        counters(
            &mut enc,
            "ferrowall_port_missed",
            "Packets the NIC dropped: receive queues full (imissed) or no mbuf (rx_nombuf).",
            &missed,
        )?;
        counters(
            &mut enc,
            "ferrowall_port_errors",
            "Receive and transmit errors of each port.",
            &errors,
        )?;

        // Workers.
        let per_worker = |f: &dyn Fn(usize) -> u64| -> Vec<(Vec<(&str, String)>, u64)> {
            (0..sh.workers.len())
                .map(|w| (label("worker", w.to_string()), f(w)))
                .collect()
        };
        counters(
            &mut enc,
            "ferrowall_worker_packets",
            "Packets each worker received.",
            &per_worker(&|w| sh.workers[w].packets()),
        )?;
        let polls: Vec<_> = (0..sh.workers.len())
            .flat_map(|w| {
                let s = &sh.workers[w];
                [
                    (
                        vec![("worker", w.to_string()), ("kind", "busy".to_owned())],
                        s.busy_polls.get(),
                    ),
                    (
                        vec![("worker", w.to_string()), ("kind", "idle".to_owned())],
                        s.idle_polls.get(),
                    ),
                ]
            })
            .collect();
        counters(
            &mut enc,
            "ferrowall_worker_polls",
            "Receive polls of each worker that found packets (busy) or none (idle).",
            &polls,
        )?;
        counters(
            &mut enc,
            "ferrowall_worker_busy_cycles",
            "TSC cycles each worker spent on bursts it received.",
            &per_worker(&|w| sh.workers[w].busy_cycles.get()),
        )?;
        counters(
            &mut enc,
            "ferrowall_worker_tx_refused",
            "Packets a full TX ring refused (freed), per worker.",
            &per_worker(&|w| sh.workers[w].tx_refused[0].get() + sh.workers[w].tx_refused[1].get()),
        )?;
        let flows: Vec<_> = (0..sh.pipelines.len())
            .map(|w| {
                (
                    label("worker", w.to_string()),
                    gauge_value(sh.pipelines[w].flows.get()),
                )
            })
            .collect();
        gauges(
            &mut enc,
            "ferrowall_flows",
            "Live flows per worker.",
            &flows,
        )?;
        counters(
            &mut enc,
            "ferrowall_flows_created",
            "Flows created per worker.",
            &per_worker(&|w| sh.pipelines[w].flows_created.get()),
        )?;

        // Drops, summed over workers.
        let drops: Vec<_> = DropReason::ALL
            .iter()
            .map(|r| {
                let n = sh.pipelines.iter().map(|p| p.drops[r.index()].get()).sum();
                (label("reason", r.as_str().to_owned()), n)
            })
            .collect();
        counters(
            &mut enc,
            "ferrowall_drops",
            "Packets dropped, by reason (all workers).",
            &drops,
        )?;
        let sum = |f: &dyn Fn(&dataplane::PipelineStats) -> u64| {
            sh.pipelines.iter().map(|p| f(p)).sum::<u64>()
        };
        let bridged = [
            (label("kind", "arp".into()), sum(&|p| p.bridged_arp.get())),
            (label("kind", "nd".into()), sum(&|p| p.bridged_nd.get())),
        ];
        counters(
            &mut enc,
            "ferrowall_bridged_packets",
            "ARP and IPv6 neighbour/router discovery packets passed.",
            &bridged,
        )?;
        counters(
            &mut enc,
            "ferrowall_rejects_sent",
            "TCP RSTs and ICMP unreachables sent for rejected packets.",
            &[(vec![], sum(&|p| p.rejects_sent.get()))],
        )?;

        // Rules, summed over workers and over reloads by rule name.
        let totals = sh.rules().totals();
        let mut rule_packets = Vec::new();
        let mut rule_bytes = Vec::new();
        let mut default = (0, 0);
        let mut names: Vec<_> = totals.iter().collect();
        names.sort_by(|a, b| a.0.cmp(b.0));
        for (name, (p, b)) in names {
            match name {
                Some(n) => {
                    rule_packets.push((label("rule", n.to_string()), *p));
                    rule_bytes.push((label("rule", n.to_string()), *b));
                }
                None => default = (*p, *b),
            }
        }
        counters(
            &mut enc,
            "ferrowall_rule_packets",
            "Packets of the flows each rule decided.",
            &rule_packets,
        )?;
        counters(
            &mut enc,
            "ferrowall_rule_bytes",
            "Bytes of the flows each rule decided.",
            &rule_bytes,
        )?;
        counters(
            &mut enc,
            "ferrowall_default_packets",
            "Packets of the flows the default action decided.",
            &[(vec![], default.0)],
        )?;
        counters(
            &mut enc,
            "ferrowall_default_bytes",
            "Bytes of the flows the default action decided.",
            &[(vec![], default.1)],
        )?;

        // DNS and FQDN.
        let answers: Vec<_> = AnswerResult::ALL
            .iter()
            .map(|r| (label("result", r.as_str().to_owned()), dns_answers(sh, *r)))
            .collect();
        counters(
            &mut enc,
            "ferrowall_dns_answers",
            "DNS answers seen, by what became of them.",
            &answers,
        )?;
        counters(
            &mut enc,
            "ferrowall_dns_queries",
            "DNS queries seen.",
            &[(vec![], sum(&|p| p.dns_queries.get()))],
        )?;
        counters(
            &mut enc,
            "ferrowall_dns_hold_timeouts",
            "Held DNS answers forwarded because hold_timeout passed.",
            &[(vec![], sum(&|p| p.dns_hold_timeouts.get()))],
        )?;
        counters(
            &mut enc,
            "ferrowall_dns_handoff_full",
            "DNS answers not learned because the control thread's ring was full.",
            &[(vec![], sum(&|p| p.dns_handoff_full.get()))],
        )?;
        counters(
            &mut enc,
            "ferrowall_dns_hold_overflow",
            "DNS answers forwarded without holding: too many were held already.",
            &[(vec![], sum(&|p| p.dns_hold_overflow.get()))],
        )?;
        counters(
            &mut enc,
            "ferrowall_dns_unreassembled",
            "DNS over TCP streams and fragmented UDP answers given up (not learned), by transport.",
            &[
                (
                    label("transport", "tcp".to_owned()),
                    sum(&|p| p.dns_tcp_broken.get()),
                ),
                (
                    label("transport", "udp".to_owned()),
                    sum(&|p| p.dns_reassembly_failed.get()),
                ),
            ],
        )?;
        gauges(
            &mut enc,
            "ferrowall_dns_tcp_buffered_bytes",
            "Buffer capacity DNS over TCP streams hold (bounded per worker).",
            &[(vec![], gauge_value(sum(&|p| p.dns_tcp_buffered.get())))],
        )?;
        gauges(
            &mut enc,
            "ferrowall_dns_held",
            "DNS answers held now.",
            &[(vec![], gauge_value(sum(&|p| p.dns_held.get())))],
        )?;
        gauges(
            &mut enc,
            "ferrowall_fqdn_entries",
            "Addresses in the FQDN table.",
            &[(vec![], gauge_value(sh.learner.entries.get()))],
        )?;
        gauges(
            &mut enc,
            "ferrowall_fqdn_names",
            "Names in the FQDN table.",
            &[(vec![], gauge_value(sh.learner.names.get()))],
        )?;
        let evictions: Vec<_> = Eviction::ALL
            .iter()
            .map(|e| {
                (
                    label("reason", e.as_str().to_owned()),
                    sh.learner.evictions[*e as usize].get(),
                )
            })
            .collect();
        counters(
            &mut enc,
            "ferrowall_fqdn_evictions",
            "Name-address bindings evicted or refused, by reason.",
            &evictions,
        )?;
        counters(
            &mut enc,
            "ferrowall_fqdn_flows",
            "Flows allowed by an FQDN rule.",
            &[(vec![], sum(&|p| p.fqdn_flows.get()))],
        )?;
        let mut hist = SummedHistogram {
            sum_s: 0.0,
            count: 0,
            buckets: LATENCY_BUCKETS_NS
                .iter()
                .map(|&b| (b as f64 / 1e9, 0))
                .chain(std::iter::once((f64::INFINITY, 0)))
                .collect(),
        };
        for p in &sh.pipelines {
            let h = &p.dns_hold_latency;
            for (slot, c) in hist.buckets.iter_mut().zip(h.counts()) {
                slot.1 += c;
            }
            hist.sum_s += h.sum_ns.get() as f64 / 1e9;
        }
        // The count is the buckets' total, so that the two always agree within a scrape.
        hist.count = hist.buckets.iter().map(|b| b.1).sum();
        let family = enc.encode_descriptor(
            "ferrowall_dns_hold_seconds",
            "Time a DNS answer was held until every worker could see its addresses.",
            None,
            MetricType::Histogram,
        )?;
        hist.encode(family)?;

        // Configuration.
        gauges(
            &mut enc,
            "ferrowall_config_generation",
            "The generation of the policy in force.",
            &[(vec![], gauge_value(sh.generation.get()))],
        )?;
        let reloads = [
            (label("result", "ok".into()), sh.reloads.ok.get()),
            (label("result", "error".into()), sh.reloads.error.get()),
        ];
        counters(
            &mut enc,
            "ferrowall_config_reloads",
            "Reloads, by result (error: the running policy stayed).",
            &reloads,
        )?;
        Ok(())
    }
}

/// The scrape body.
pub fn render(shared: &Arc<Shared>) -> Result<String, fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Ferrowall(Arc::clone(shared))));
    let mut body = String::new();
    prometheus_client::encoding::text::encode(&mut body, &registry)?;
    Ok(body)
}

/// The Prometheus text format (0.0.4) of an OpenMetrics text exposition, for clients that do
/// not ask for OpenMetrics (curl, `promtool check metrics`, older scrapers): a counter family
/// is named with its `_total` suffix in `# HELP` and `# TYPE`, and there is no `# EOF`.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len() + 64 * counters.len());
    for line in openmetrics.lines() {
        if line == "# EOF" {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

/// Whether the client asked for OpenMetrics (as Prometheus itself does).
fn wants_openmetrics(req: &Request<Incoming>) -> bool {
    req.headers()
        .get_all(hyper::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"))
}

fn respond(shared: &Arc<Shared>, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let plain = |status: StatusCode, text: &'static str| {
        let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
        *r.status_mut() = status;
        r
    };
    if req.uri().path() != "/metrics" {
        return plain(StatusCode::NOT_FOUND, "not found; try /metrics\n");
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
        r.headers_mut().insert(
            hyper::header::ALLOW,
            hyper::header::HeaderValue::from_static("GET, HEAD"),
        );
        return r;
    }
    match render(shared) {
        Ok(body) => {
            let (body, content_type) = if wants_openmetrics(req) {
                (body, OPENMETRICS)
            } else {
                (to_prometheus_text(&body), PROMETHEUS_TEXT)
            };
            let mut r = Response::new(Full::new(Bytes::from(body)));
            r.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static(content_type),
            );
            r
        }
        Err(_) => plain(StatusCode::INTERNAL_SERVER_ERROR, "encoding failed\n"),
    }
}

/// The metrics listener, bound.
#[derive(Debug)]
pub struct MetricsServer {
    listener: std::net::TcpListener,
}

impl MetricsServer {
    /// Binds `addr` (port 0: any free port; see [`MetricsServer::local_addr`]).
    pub fn bind(addr: SocketAddr) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        Ok(MetricsServer { listener })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves scrapes until `stop` is set (checked every 100 ms).
    pub fn serve(self, shared: Arc<Shared>, stop: &AtomicBool) -> std::io::Result<()> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        rt.block_on(async {
            let listener = tokio::net::TcpListener::from_std(self.listener)?;
            info!(listen = %listener.local_addr()?, "metrics endpoint listening (GET /metrics)");
            let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
            while !stop.load(Ordering::Relaxed) {
                let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let accepted =
                    tokio::time::timeout(Duration::from_millis(100), listener.accept()).await;
                let (stream, _) = match accepted {
                    Err(_) => continue, // no client in the last 100 ms: look at `stop`
                    Ok(Err(e)) => {
                        warn!("metrics: accept: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                    Ok(Ok(c)) => c,
                };
                let shared = Arc::clone(&shared);
                tokio::task::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let r = respond(&shared, &req);
                        async move { Ok::<_, Infallible>(r) }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .timer(hyper_util::rt::TokioTimer::new())
                        .header_read_timeout(HEADER_TIMEOUT)
                        .keep_alive(false)
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                    // Errors are the client's (malformed request, hang-up, timeout): hyper
                    // has answered what can be answered; nothing to do on this side.
                    let _ = tokio::time::timeout(EXCHANGE_TIMEOUT, conn).await;
                    drop(permit);
                });
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_names_counters_with_total_and_drops_eof() {
        let om = "# HELP a_drops Drops.\n# TYPE a_drops counter\na_drops_total{reason=\"x\"} 1\n# HELP g A gauge.\n# TYPE g gauge\ng 2\n# EOF\n";
        assert_eq!(
            to_prometheus_text(om),
            "# HELP a_drops_total Drops.\n# TYPE a_drops_total counter\na_drops_total{reason=\"x\"} 1\n# HELP g A gauge.\n# TYPE g gauge\ng 2\n"
        );
    }
}
