//! The worker loop: poll-mode, run to completion, one RX and one TX queue on each port.
//!
//! Per iteration, for each side: receive a burst, decide it in the pipeline (stage by stage),
//! send what passes out of the other port and what the pipeline wrote (reject answers) out of the
//! same port. Between iterations the worker holds no reference into published state: that is its
//! quiescent point, where it also takes messages from the control thread (a new policy) and hands
//! back what it no longer uses (the old policy), so that memory is only ever freed by control.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use dpdk::{Burst, Mbuf, Mempool, RxQueue, TxQueue, tsc};

use crate::agent::Agent;
use crate::counter::Counter;
use crate::pipeline::{Disposition, Effects, Pipeline};
use crate::side::Side;
use crate::verdict::Verdict;

/// The two queues a worker owns on one port.
#[derive(Debug)]
pub struct PortQueues<'p, 'e> {
    /// Receive queue.
    pub rx: RxQueue<'p, 'e>,
    /// Transmit queue.
    pub tx: TxQueue<'p, 'e>,
}

/// A worker's loop counters; it is their only writer (see [`crate::counter`]).
#[derive(Debug, Default)]
pub struct WorkerStats {
    /// Packets received, by side.
    pub rx: [Counter; 2],
    /// Packets sent, by side they left on.
    pub tx: [Counter; 2],
    /// Packets the TX ring refused (freed), by side.
    pub tx_refused: [Counter; 2],
    /// Reject answers not sent for lack of mbufs.
    pub no_mbuf: Counter,
    /// Loop iterations that received at least one packet.
    pub busy_polls: Counter,
    /// Loop iterations that received nothing.
    pub idle_polls: Counter,
    /// TSC cycles spent processing received bursts (RX to TX included).
    pub busy_cycles: Counter,
}

impl WorkerStats {
    /// Packets received on both sides.
    pub fn packets(&self) -> u64 {
        self.rx[0].get() + self.rx[1].get()
    }

    /// Average cycles per packet processed so far (0 before the first packet).
    pub fn cycles_per_packet(&self) -> f64 {
        let p = self.packets();
        if p == 0 {
            0.0
        } else {
            self.busy_cycles.get() as f64 / p as f64
        }
    }
}

/// Converts TSC readings to nanoseconds since the clock was made.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    tsc0: u64,
    /// Nanoseconds per cycle, as a 32.32 fixed-point number.
    mult: u64,
}

impl Clock {
    /// A clock counting from now, for a TSC running at `hz`.
    pub fn new(hz: u64) -> Self {
        let mult =
            u64::try_from((1_000_000_000u128 << 32) / u128::from(hz.max(1))).unwrap_or(u64::MAX);
        Clock { tsc0: tsc(), mult }
    }

    /// Nanoseconds since the clock was made.
    #[inline]
    pub fn now(&self) -> u64 {
        let d = u128::from(tsc().wrapping_sub(self.tsc0));
        u64::try_from((d * u128::from(self.mult)) >> 32).unwrap_or(u64::MAX)
    }
}

/// A stopping worker keeps polling until this many consecutive polls found nothing...
const DRAIN_EMPTY_POLLS: u32 = 64;
/// ...or until this many polls passed, whichever comes first (a device that never goes quiet,
/// such as `net_null`, must not keep it running).
const DRAIN_MAX_POLLS: u32 = 4096;

/// One worker: its queues on both ports, its pipeline, its link with control, its counters.
#[derive(Debug)]
pub struct Worker<'p, 'e> {
    /// Worker index (0-based), also its queue index on every port.
    pub id: usize,
    /// Queues on the inside and outside ports, indexed by [`Side`].
    pub ports: [PortQueues<'p, 'e>; 2],
    /// Where answers to rejected packets get their mbufs.
    pub pool: &'e Mempool<'e>,
    /// Most packets per RX burst.
    pub burst: usize,
    /// The packet path.
    pub pipeline: Pipeline<Mbuf<'e>>,
    /// Its conversations with control and admin.
    pub agent: Agent,
    /// Time.
    pub clock: Clock,
    /// Counters, shared for reading.
    pub stats: Arc<WorkerStats>,
}

impl<'e> Worker<'_, 'e> {
    /// Polls until `stop` is set, then drains what is still queued and returns.
    pub fn run(&mut self, stop: &AtomicBool) {
        let mut bufs = Buffers::default();
        self.agent.generation.set(self.pipeline.policy().generation);
        while !stop.load(Ordering::Relaxed) {
            self.poll_once(&mut bufs);
        }
        let mut empty = 0;
        for _ in 0..DRAIN_MAX_POLLS {
            if self.poll_once(&mut bufs) == 0 {
                empty += 1;
                if empty == DRAIN_EMPTY_POLLS {
                    break;
                }
            } else {
                empty = 0;
            }
        }
        // Control no longer says when held answers may go: they go now.
        self.pipeline.release_all_holds(&mut bufs.fx);
        self.flush_effects(&mut bufs);
        self.send(&mut bufs);
    }

    /// One loop iteration over both sides, then the quiescent point; returns the packets
    /// received.
    #[inline]
    pub fn poll_once(&mut self, bufs: &mut Buffers<'e>) -> usize {
        let mut total = 0;
        for side in Side::BOTH {
            let n = self.ports[side.index()]
                .rx
                .rx_burst(&mut bufs.rx, self.burst);
            if n == 0 {
                continue;
            }
            let t0 = tsc();
            total += n;
            self.stats.rx[side.index()].add(n as u64);
            let now = self.clock.now();
            for m in bufs.rx.as_slice() {
                m.prefetch();
            }
            let out = &mut bufs.tx[side.other().index()];
            self.pipeline
                .process_burst(bufs.rx.drain(), side, now, &mut bufs.fx, |disp, _| {
                    if let Disposition::Pass(m) = disp {
                        // The TX burst was emptied after the previous side and an RX burst is at most
                        // MAX_BURST packets, so this push always finds room.
                        let _ = out.push(m);
                    }
                });
            self.flush_effects(bufs);
            self.send(bufs);
            self.stats.busy_cycles.add(tsc() - t0);
        }
        if total == 0 {
            self.stats.idle_polls.inc();
        } else {
            self.stats.busy_polls.inc();
        }
        self.quiescent(bufs);
        total
    }

    /// Released held packets and generated answers go to their TX bursts.
    fn flush_effects(&mut self, bufs: &mut Buffers<'e>) {
        let mut fx = std::mem::take(&mut bufs.fx);
        for r in fx.released.drain(..) {
            if r.decision.verdict == Verdict::Allow {
                self.enqueue(bufs, r.side.other(), r.packet);
            }
        }
        for g in fx.generated.drain(..) {
            match self.pool.alloc_copy(&g.frame) {
                Some(m) => self.enqueue(bufs, g.side, m),
                None => self.stats.no_mbuf.inc(),
            }
        }
        bufs.fx = fx;
    }

    /// Adds a packet to the TX burst of `side`, sending the burst first if it is full.
    fn enqueue(&mut self, bufs: &mut Buffers<'e>, side: Side, m: Mbuf<'e>) {
        if let Err(m) = bufs.tx[side.index()].push(m) {
            self.send(bufs);
            // The burst is empty now (what the device refused was freed and counted).
            let _ = bufs.tx[side.index()].push(m);
        }
    }

    fn send(&mut self, bufs: &mut Buffers<'e>) {
        for side in Side::BOTH {
            let i = side.index();
            if bufs.tx[i].is_empty() {
                continue;
            }
            let q = &mut self.ports[i].tx;
            let before = q.refused();
            let sent = q.tx_burst(&mut bufs.tx[i]);
            self.stats.tx[i].add(sent as u64);
            self.stats.tx_refused[i].add(q.refused() - before);
        }
    }

    /// The loop boundary: housekeeping, then the conversations with control and admin.
    fn quiescent(&mut self, bufs: &mut Buffers<'e>) {
        let now = self.clock.now();
        let fleet = &self.agent.fleet;
        self.pipeline.maintain(now, || fleet.min(), &mut bufs.fx);
        self.agent.quiescent(&mut self.pipeline, &mut bufs.fx, now);
        if !bufs.fx.released.is_empty() || !bufs.fx.generated.is_empty() {
            self.flush_effects(bufs);
            self.send(bufs);
        }
    }
}

/// The bursts and scratch space a worker reuses every iteration.
#[derive(Debug, Default)]
pub struct Buffers<'e> {
    rx: Burst<'e>,
    tx: [Burst<'e>; 2],
    fx: Effects<Mbuf<'e>>,
}
