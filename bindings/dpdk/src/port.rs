//! Ethernet ports: configuration (queues, symmetric RSS), start/stop, statistics, and the RX/TX
//! queue handles a worker owns.
//!
//! DPDK requires that one queue is polled by one thread at a time and that a port is not stopped
//! while its queues are polled. Queue handles enforce both: each queue is handed out once, and
//! [`Port::stop`] refuses while any handle is alive (a handle also borrows the port, so the port
//! can not be dropped under it).

use std::ffi::{CStr, CString};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};

use rte_sys::{rte_eth_conf, rte_eth_dev_info, rte_eth_stats, rte_ether_addr};

use crate::eal::Eal;
use crate::error::{Error, Result, check};
use crate::mbuf::{Burst, Mempool};

/// How a port is set up by [`Port::configure`].
#[derive(Debug, Clone)]
pub struct PortConfig {
    /// Receive queues (one per worker).
    pub rx_queues: u16,
    /// Transmit queues (one per worker).
    pub tx_queues: u16,
    /// Descriptors per receive queue (adjusted to the device's limits).
    pub rx_desc: u16,
    /// Descriptors per transmit queue (adjusted to the device's limits).
    pub tx_desc: u16,
    /// Receive every frame, whatever its destination MAC (a bridge needs this).
    pub promiscuous: bool,
}

impl Default for PortConfig {
    fn default() -> Self {
        PortConfig {
            rx_queues: 1,
            tx_queues: 1,
            rx_desc: 1024,
            tx_desc: 1024,
            promiscuous: true,
        }
    }
}

/// How received packets are spread over the receive queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RssMode {
    /// One receive queue: nothing to spread.
    Single,
    /// Toeplitz RSS with a symmetric key: both directions of a flow reach the same queue.
    Symmetric,
    /// The device spreads packets by its own means (for `net_af_packet`, the kernel's
    /// `PACKET_FANOUT_HASH`, which is symmetric as well).
    DeviceDefined,
}

/// Device facts reported by `rte_eth_dev_info_get`.
#[derive(Debug, Clone)]
pub struct PortInfo {
    /// PMD name, such as `net_af_packet` or `net_ice`.
    pub driver: String,
    /// Most receive queues the device supports.
    pub max_rx_queues: u16,
    /// Most transmit queues the device supports.
    pub max_tx_queues: u16,
    /// Flow types the device can hash for RSS (`RTE_ETH_RSS_*` bits).
    pub rss_offloads: u64,
    /// RSS key size in bytes (0: the device did not say).
    pub hash_key_size: u8,
    /// The port's MAC address.
    pub mac: [u8; 6],
}

/// Counters of `rte_eth_stats_get`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Packets received.
    pub ipackets: u64,
    /// Packets sent.
    pub opackets: u64,
    /// Bytes received.
    pub ibytes: u64,
    /// Bytes sent.
    pub obytes: u64,
    /// Packets the NIC dropped because the receive queues were full.
    pub imissed: u64,
    /// Receive errors.
    pub ierrors: u64,
    /// Transmit errors.
    pub oerrors: u64,
    /// Receives that failed for lack of mbufs.
    pub rx_nombuf: u64,
}

// RTE_ETH_RSS_* bits (RTE_BIT64 macros, which bindgen can not evaluate).
const RSS_IPV4: u64 = 1 << 2;
const RSS_FRAG_IPV4: u64 = 1 << 3;
const RSS_NONFRAG_IPV4_TCP: u64 = 1 << 4;
const RSS_NONFRAG_IPV4_UDP: u64 = 1 << 5;
const RSS_NONFRAG_IPV4_OTHER: u64 = 1 << 7;
const RSS_IPV6: u64 = 1 << 8;
const RSS_FRAG_IPV6: u64 = 1 << 9;
const RSS_NONFRAG_IPV6_TCP: u64 = 1 << 10;
const RSS_NONFRAG_IPV6_UDP: u64 = 1 << 11;
const RSS_NONFRAG_IPV6_OTHER: u64 = 1 << 13;
/// The flow types ferrowall wants hashed: addresses, and ports where there are any.
const RSS_WANTED: u64 = RSS_IPV4
    | RSS_FRAG_IPV4
    | RSS_NONFRAG_IPV4_TCP
    | RSS_NONFRAG_IPV4_UDP
    | RSS_NONFRAG_IPV4_OTHER
    | RSS_IPV6
    | RSS_FRAG_IPV6
    | RSS_NONFRAG_IPV6_TCP
    | RSS_NONFRAG_IPV6_UDP
    | RSS_NONFRAG_IPV6_OTHER;

/// The Toeplitz key 0x6d5a repeated makes the hash symmetric (Woo and Park, "Scalable TCP
/// Session Monitoring with Symmetric Receive-side Scaling", 2012): swapping source and
/// destination leaves it unchanged.
fn symmetric_key(len: usize) -> Box<[u8]> {
    (0..len)
        .map(|i| if i % 2 == 0 { 0x6d } else { 0x5a })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Unconfigured,
    Configured,
    Started,
}

/// An ethdev port. Dropping it stops and closes it.
#[derive(Debug)]
pub struct Port<'e> {
    id: u16,
    name: String,
    state: State,
    rss: RssMode,
    /// Kept alive because PMDs read the key at start, after configure returned.
    rss_key: Option<Box<[u8]>>,
    rx_taken: Vec<AtomicBool>,
    tx_taken: Vec<AtomicBool>,
    _eal: PhantomData<&'e Eal>,
}

impl<'e> Port<'e> {
    /// Finds the port DPDK created for `device`: a vdev name (`net_af_packet0`) or a PCI address
    /// (`0000:3b:00.0`).
    pub fn open(_eal: &'e Eal, device: &str) -> Result<Port<'e>> {
        let cname = CString::new(device).map_err(|_| Error::NoSuchPort(device.to_owned()))?;
        let mut id: u16 = 0;
        // SAFETY: valid C string and out-pointer; the EAL is initialised.
        let rc = unsafe { rte_sys::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut id) };
        if rc < 0 {
            return Err(Error::NoSuchPort(device.to_owned()));
        }
        Ok(Port {
            id,
            name: device.to_owned(),
            state: State::Unconfigured,
            rss: RssMode::Single,
            rss_key: None,
            rx_taken: Vec::new(),
            tx_taken: Vec::new(),
            _eal: PhantomData,
        })
    }

    /// DPDK's port id.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// The device name it was opened with.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How received packets are spread over queues (known after `configure`).
    pub fn rss(&self) -> RssMode {
        self.rss
    }

    /// What the device reports about itself.
    pub fn info(&self) -> Result<PortInfo> {
        let mut info = rte_eth_dev_info::default();
        // SAFETY: valid port id and out-pointer.
        check("rte_eth_dev_info_get", unsafe {
            rte_sys::rte_eth_dev_info_get(self.id, &mut info)
        })?;
        let driver = if info.driver_name.is_null() {
            String::new()
        } else {
            // SAFETY: the PMD's static, NUL-terminated driver name.
            unsafe { CStr::from_ptr(info.driver_name) }
                .to_string_lossy()
                .into_owned()
        };
        let mut mac = rte_ether_addr::default();
        // SAFETY: valid port id and out-pointer.
        check("rte_eth_macaddr_get", unsafe {
            rte_sys::rte_eth_macaddr_get(self.id, &mut mac)
        })?;
        Ok(PortInfo {
            driver,
            max_rx_queues: info.max_rx_queues,
            max_tx_queues: info.max_tx_queues,
            rss_offloads: info.flow_type_rss_offloads,
            hash_key_size: info.hash_key_size,
            mac: mac.addr_bytes,
        })
    }

    /// Configures queues (with symmetric RSS when the device can hash and there are several
    /// receive queues), sets up every queue with mbufs from `pool`, and enables promiscuous mode
    /// if asked (devices that can not are left as they are).
    pub fn configure(&mut self, cfg: &PortConfig, pool: &'e Mempool<'e>) -> Result<()> {
        if self.queues_in_use() {
            return Err(Error::QueuesInUse(self.name.clone()));
        }
        if self.state == State::Started {
            self.stop()?;
        }
        let info = self.info()?;
        for (kind, max, wanted) in [
            ("rx", info.max_rx_queues, cfg.rx_queues),
            ("tx", info.max_tx_queues, cfg.tx_queues),
        ] {
            if wanted == 0 || wanted > max {
                return Err(Error::TooManyQueues {
                    port: self.name.clone(),
                    kind,
                    max,
                    wanted,
                });
            }
        }
        let mut conf = rte_eth_conf::default();
        self.rss = RssMode::Single;
        self.rss_key = None;
        if cfg.rx_queues > 1 {
            let hf = info.rss_offloads & RSS_WANTED;
            if hf != 0 {
                let key_len = if info.hash_key_size > 0 {
                    usize::from(info.hash_key_size)
                } else {
                    40
                };
                let mut key = symmetric_key(key_len);
                conf.rxmode.mq_mode = rte_sys::rte_eth_rx_mq_mode_RTE_ETH_MQ_RX_RSS;
                conf.rx_adv_conf.rss_conf.rss_key = key.as_mut_ptr();
                conf.rx_adv_conf.rss_conf.rss_key_len = u8::try_from(key_len).unwrap_or(40);
                conf.rx_adv_conf.rss_conf.rss_hf = hf;
                self.rss_key = Some(key);
                self.rss = RssMode::Symmetric;
            } else {
                self.rss = RssMode::DeviceDefined;
            }
        }
        // SAFETY: valid port id; conf (and the key it points to, kept in self) outlive the call.
        check("rte_eth_dev_configure", unsafe {
            rte_sys::rte_eth_dev_configure(self.id, cfg.rx_queues, cfg.tx_queues, &conf)
        })?;
        let (mut nrx, mut ntx) = (cfg.rx_desc, cfg.tx_desc);
        // SAFETY: valid port id and out-pointers.
        check("rte_eth_dev_adjust_nb_rx_tx_desc", unsafe {
            rte_sys::rte_eth_dev_adjust_nb_rx_tx_desc(self.id, &mut nrx, &mut ntx)
        })?;
        // SAFETY: valid port id.
        let socket = unsafe { rte_sys::rte_eth_dev_socket_id(self.id) };
        let socket = u32::try_from(socket).unwrap_or(u32::MAX); // SOCKET_ID_ANY is -1
        for q in 0..cfg.rx_queues {
            // SAFETY: configured port, queue in range, live pool (it outlives the port: 'e);
            // a null rxconf selects the device defaults.
            check("rte_eth_rx_queue_setup", unsafe {
                rte_sys::rte_eth_rx_queue_setup(
                    self.id,
                    q,
                    nrx,
                    socket,
                    std::ptr::null(),
                    pool.as_ptr(),
                )
            })?;
        }
        for q in 0..cfg.tx_queues {
            // SAFETY: configured port, queue in range; null txconf selects the defaults.
            check("rte_eth_tx_queue_setup", unsafe {
                rte_sys::rte_eth_tx_queue_setup(self.id, q, ntx, socket, std::ptr::null())
            })?;
        }
        if cfg.promiscuous {
            // SAFETY: valid port id.
            let rc = unsafe { rte_sys::rte_eth_promiscuous_enable(self.id) };
            // Some virtual devices (net_ring, net_null) have no such mode: they see everything.
            if rc < 0 && rc != -95 {
                check("rte_eth_promiscuous_enable", rc)?;
            }
        }
        self.rx_taken = (0..cfg.rx_queues).map(|_| AtomicBool::new(false)).collect();
        self.tx_taken = (0..cfg.tx_queues).map(|_| AtomicBool::new(false)).collect();
        self.state = State::Configured;
        Ok(())
    }

    /// Starts the port.
    pub fn start(&mut self) -> Result<()> {
        match self.state {
            State::Unconfigured => Err(Error::PortNotConfigured(self.name.clone())),
            State::Started => Ok(()),
            State::Configured => {
                // SAFETY: configured port.
                check("rte_eth_dev_start", unsafe {
                    rte_sys::rte_eth_dev_start(self.id)
                })?;
                self.state = State::Started;
                Ok(())
            }
        }
    }

    /// Stops the port; refused while queue handles are alive (DPDK forbids stopping a port
    /// whose queues are being polled).
    pub fn stop(&mut self) -> Result<()> {
        if self.queues_in_use() {
            return Err(Error::QueuesInUse(self.name.clone()));
        }
        if self.state == State::Started {
            // SAFETY: started port, no queue handle alive, so nothing polls it.
            check("rte_eth_dev_stop", unsafe {
                rte_sys::rte_eth_dev_stop(self.id)
            })?;
            self.state = State::Configured;
        }
        Ok(())
    }

    fn queues_in_use(&self) -> bool {
        self.rx_taken
            .iter()
            .chain(&self.tx_taken)
            .any(|t| t.load(Ordering::Acquire))
    }

    fn take(&self, taken: &[AtomicBool], queue: u16) -> Result<()> {
        let free = self.state != State::Unconfigured
            && taken.get(usize::from(queue)).is_some_and(|t| {
                t.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            });
        if free {
            Ok(())
        } else {
            Err(Error::QueueUnavailable {
                port: self.name.clone(),
                queue,
            })
        }
    }

    /// The handle of receive queue `queue`; each queue is handed out once at a time.
    pub fn rx_queue(&self, queue: u16) -> Result<RxQueue<'_, 'e>> {
        self.take(&self.rx_taken, queue)?;
        Ok(RxQueue { port: self, queue })
    }

    /// The handle of transmit queue `queue`; each queue is handed out once at a time.
    pub fn tx_queue(&self, queue: u16) -> Result<TxQueue<'_, 'e>> {
        self.take(&self.tx_taken, queue)?;
        Ok(TxQueue {
            port: self,
            queue,
            refused: 0,
        })
    }

    /// The device's counters.
    pub fn stats(&self) -> Result<PortStats> {
        let mut s = rte_eth_stats::default();
        // SAFETY: valid port id and out-pointer; PMDs allow reading stats while queues run.
        check("rte_eth_stats_get", unsafe {
            rte_sys::rte_eth_stats_get(self.id, &mut s)
        })?;
        Ok(PortStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            ibytes: s.ibytes,
            obytes: s.obytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        })
    }
}

impl Drop for Port<'_> {
    fn drop(&mut self) {
        // Queue handles borrow the port, so none is alive here.
        if self.state == State::Started {
            // SAFETY: started port that nothing polls any more.
            let _ = unsafe { rte_sys::rte_eth_dev_stop(self.id) };
        }
        if self.state != State::Unconfigured {
            // SAFETY: stopped port; closing releases its queues and their mbufs.
            let _ = unsafe { rte_sys::rte_eth_dev_close(self.id) };
        }
    }
}

/// A receive queue, owned by the one thread that polls it.
#[derive(Debug)]
pub struct RxQueue<'p, 'e> {
    port: &'p Port<'e>,
    queue: u16,
}

impl<'e> RxQueue<'_, 'e> {
    /// The port this queue belongs to.
    pub fn port_name(&self) -> &str {
        &self.port.name
    }

    /// The queue index.
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Receives into the free slots of `burst`, at most `max` packets; returns how many.
    #[inline]
    pub fn rx_burst(&mut self, burst: &mut Burst<'e>, max: usize) -> usize {
        let n = u16::try_from(max.min(burst.room())).unwrap_or(u16::MAX);
        if n == 0 {
            return 0;
        }
        // SAFETY: this handle is the queue's only user (taken once), the port is started or at
        // least configured (rx_burst on a stopped port returns 0), and the slots written are the
        // burst's free ones.
        let got =
            unsafe { rte_sys::rte_eth_rx_burst(self.port.id, self.queue, burst.tail_ptr(), n) };
        let got = usize::from(got);
        // SAFETY: the PMD wrote `got` owned mbufs into those slots.
        unsafe { burst.grow(got) };
        got
    }
}

impl Drop for RxQueue<'_, '_> {
    fn drop(&mut self) {
        if let Some(t) = self.port.rx_taken.get(usize::from(self.queue)) {
            t.store(false, Ordering::Release);
        }
    }
}

/// A transmit queue, owned by the one thread that sends on it.
#[derive(Debug)]
pub struct TxQueue<'p, 'e> {
    port: &'p Port<'e>,
    queue: u16,
    refused: u64,
}

impl<'e> TxQueue<'_, 'e> {
    /// The port this queue belongs to.
    pub fn port_name(&self) -> &str {
        &self.port.name
    }

    /// Sends every mbuf of `burst`; those the device refuses (ring full) are freed and counted.
    /// The burst is empty afterwards. Returns how many were sent.
    #[inline]
    pub fn tx_burst(&mut self, burst: &mut Burst<'e>) -> usize {
        if burst.is_empty() {
            return 0;
        }
        let n = u16::try_from(burst.len()).unwrap_or(u16::MAX);
        // SAFETY: this handle is the queue's only user; the first n slots hold owned mbufs, and
        // the PMD takes ownership of the first `sent` of them.
        let sent =
            unsafe { rte_sys::rte_eth_tx_burst(self.port.id, self.queue, burst.head_ptr(), n) };
        let sent = usize::from(sent);
        self.refused += burst.forget_sent_free_rest(sent) as u64;
        sent
    }

    /// Packets the device refused since this handle was taken (freed, not sent).
    pub fn refused(&self) -> u64 {
        self.refused
    }
}

impl Drop for TxQueue<'_, '_> {
    fn drop(&mut self) {
        if let Some(t) = self.port.tx_taken.get(usize::from(self.queue)) {
            t.store(false, Ordering::Release);
        }
    }
}
