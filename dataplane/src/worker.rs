//! The worker loop: poll-mode, run to completion, one RX and one TX queue on each port.
//!
//! Per iteration, for each side: receive a burst, process it stage by stage, send what passes out
//! of the other port. The loop is the worker's quiescent point: between iterations it holds no
//! reference into published state.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use dpdk::{Burst, RxQueue, TxQueue, tsc};

use crate::counter::Counter;
use crate::side::Side;

/// The two queues a worker owns on one port.
#[derive(Debug)]
pub struct PortQueues<'p, 'e> {
    /// Receive queue.
    pub rx: RxQueue<'p, 'e>,
    /// Transmit queue.
    pub tx: TxQueue<'p, 'e>,
}

/// A worker's counters; it is their only writer (see [`crate::counter`]).
#[derive(Debug, Default)]
pub struct WorkerStats {
    /// Packets received, by side.
    pub rx: [Counter; 2],
    /// Packets sent, by side they left on.
    pub tx: [Counter; 2],
    /// Packets the TX ring refused (freed), by side.
    pub tx_refused: [Counter; 2],
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

/// A stopping worker keeps polling until this many consecutive polls found nothing...
const DRAIN_EMPTY_POLLS: u32 = 64;
/// ...or until this many polls passed, whichever comes first (a device that never goes quiet,
/// such as `net_null`, must not keep it running).
const DRAIN_MAX_POLLS: u32 = 4096;

/// One worker: its queues on both ports and its counters.
#[derive(Debug)]
pub struct Worker<'p, 'e> {
    /// Worker index (0-based), also its queue index on every port.
    pub id: usize,
    /// Queues on the inside and outside ports, indexed by [`Side`].
    pub ports: [PortQueues<'p, 'e>; 2],
    /// Most packets per RX burst.
    pub burst: usize,
    /// Counters, shared for reading.
    pub stats: Arc<WorkerStats>,
}

impl<'e> Worker<'_, 'e> {
    /// Polls until `stop` is set, then drains what is still queued and returns.
    pub fn run(&mut self, stop: &AtomicBool) {
        let mut rx = Burst::new();
        while !stop.load(Ordering::Relaxed) {
            self.poll_once(&mut rx);
        }
        let mut empty = 0;
        for _ in 0..DRAIN_MAX_POLLS {
            if self.poll_once(&mut rx) == 0 {
                empty += 1;
                if empty == DRAIN_EMPTY_POLLS {
                    break;
                }
            } else {
                empty = 0;
            }
        }
    }

    /// One loop iteration over both sides; returns the packets received.
    #[inline]
    pub fn poll_once(&mut self, rx: &mut Burst<'e>) -> usize {
        let mut total = 0;
        for side in Side::BOTH {
            let (inq, outq) = split(&mut self.ports, side);
            let n = inq.rx.rx_burst(rx, self.burst);
            if n == 0 {
                continue;
            }
            let t0 = tsc();
            total += n;
            self.stats.rx[side.index()].add(n as u64);
            let before = outq.tx.refused();
            let sent = outq.tx.tx_burst(rx);
            let other = side.other().index();
            self.stats.tx[other].add(sent as u64);
            self.stats.tx_refused[other].add(outq.tx.refused() - before);
            self.stats.busy_cycles.add(tsc() - t0);
        }
        if total == 0 {
            self.stats.idle_polls.inc();
        } else {
            self.stats.busy_polls.inc();
        }
        total
    }
}

/// Mutable access to the queues of `side` and of the other side at once.
fn split<'a, 'p, 'e>(
    ports: &'a mut [PortQueues<'p, 'e>; 2],
    side: Side,
) -> (&'a mut PortQueues<'p, 'e>, &'a mut PortQueues<'p, 'e>) {
    let [inside, outside] = ports;
    match side {
        Side::Inside => (inside, outside),
        Side::Outside => (outside, inside),
    }
}
