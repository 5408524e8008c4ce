//! Starts the EAL once for this test process (no hugepages, no PCI, virtual devices only) and
//! moves mbufs through real PMD bursts. One test function: DPDK allows one EAL per process.

#![allow(clippy::cast_possible_truncation)] // test patterns truncate on purpose

use dpdk::{Burst, Eal, Error, Mempool, Port, PortConfig};

const EAL_ARGS: &[&str] = &[
    "-l",
    "0-1",
    "--no-huge",
    "-m",
    "256",
    "--no-pci",
    "--no-shconf",
    "--log-level=lib.eal:error",
    "--vdev=net_ring0",
    "--vdev=net_null0,size=64",
];

fn frame(i: u16) -> Vec<u8> {
    // A distinct frame per index: length and content both depend on i.
    let len = 60 + usize::from(i % 64);
    (0..len).map(|b| (b as u16 ^ i) as u8).collect()
}

#[test]
fn eal_mempool_ports_bursts_lcores() {
    let eal = Eal::init(EAL_ARGS).expect("EAL starts without hugepages or PCI");
    assert!(matches!(
        Eal::init(EAL_ARGS),
        Err(Error::EalAlreadyInitialised)
    ));
    assert_eq!(eal.port_count(), 2);
    assert_eq!(eal.worker_lcores(), vec![1]);
    assert!(eal.tsc_hz() > 0);

    let pool = Mempool::new(&eal, "test_pool", 4095, 0, dpdk::DEFAULT_DATA_ROOM).expect("pool");
    assert_eq!(pool.in_use(), 0);
    let m = pool.alloc_copy(b"hello").expect("mbuf");
    assert_eq!(m.data(), b"hello");
    assert_eq!(pool.in_use(), 1);
    drop(m);
    assert_eq!(pool.in_use(), 0);
    assert!(
        pool.alloc_copy(&[0u8; 4000]).is_none(),
        "larger than the data room"
    );

    // A missing device is a typed error naming it.
    let err = Port::open(&eal, "net_nope0").unwrap_err();
    assert!(err.to_string().contains("net_nope0"), "{err}");

    // net_ring0 loops TX back to RX: what we send comes back byte for byte, in order.
    let mut ring = Port::open(&eal, "net_ring0").expect("net_ring0");
    ring.configure(&PortConfig::default(), pool)
        .expect("configure");
    ring.start().expect("start");
    {
        let mut rx = ring.rx_queue(0).expect("rx queue");
        let mut tx = ring.tx_queue(0).expect("tx queue");
        assert!(ring.rx_queue(0).is_err(), "a queue is handed out once");
        assert!(ring.rx_queue(7).is_err(), "no such queue");

        let mut out = Burst::new();
        for i in 0..32 {
            out.push(pool.alloc_copy(&frame(i)).expect("mbuf"))
                .expect("room");
        }
        assert_eq!(tx.tx_burst(&mut out), 32);
        assert!(out.is_empty());
        let mut inb = Burst::new();
        assert_eq!(rx.rx_burst(&mut inb, 64), 32);
        for (i, m) in inb.as_slice().iter().enumerate() {
            assert_eq!(m.data(), frame(i as u16).as_slice(), "frame {i}");
        }
        // Moving the burst back out through drain and TX again keeps the order.
        let mut again = Burst::new();
        for m in inb.drain() {
            again.push(m).expect("room");
        }
        assert_eq!(tx.tx_burst(&mut again), 32);
        let mut back = Burst::new();
        assert_eq!(rx.rx_burst(&mut back, 10), 10, "max is respected");
        assert_eq!(rx.rx_burst(&mut back, 64), 22);
        assert_eq!(back.as_slice()[31].data(), frame(31).as_slice());
        back.clear();
        assert_eq!(tx.refused(), 0);
    }
    let st = ring.stats().expect("stats");
    assert_eq!((st.ipackets, st.opackets), (64, 64));
    assert_eq!(pool.in_use(), 0, "every mbuf went back to the pool");
    ring.stop().expect("stop");

    // A worker lcore polls net_null (which makes 64-byte packets) and sends them back to it.
    let mut null = Port::open(&eal, "net_null0").expect("net_null0");
    null.configure(&PortConfig::default(), pool)
        .expect("configure");
    null.start().expect("start");
    let release = std::sync::atomic::AtomicBool::new(false);
    let moved = eal.scope(|s| {
        let mut rx = null.rx_queue(0).expect("rx");
        let mut tx = null.tx_queue(0).expect("tx");
        let release = &release;
        let h = s
            .launch(1, move || {
                let mut burst = Burst::new();
                let mut total = 0usize;
                // Keep the lcore busy until the main thread has checked that it is.
                while total < 10_000 || !release.load(std::sync::atomic::Ordering::Acquire) {
                    rx.rx_burst(&mut burst, 32);
                    assert!(burst.as_slice().iter().all(|m| m.data().len() == 64));
                    total += tx.tx_burst(&mut burst);
                }
                total
            })
            .expect("launch on lcore 1");
        assert!(s.launch(1, || 0).is_err(), "lcore 1 is busy");
        assert!(s.launch(0, || 0).is_err(), "the main lcore is not a worker");
        release.store(true, std::sync::atomic::Ordering::Release);
        h.join().expect("join")
    });
    assert!(moved >= 10_000);
    let st = null.stats().expect("stats");
    assert!(st.ipackets >= 10_000 && st.opackets >= 10_000, "{st:?}");
    null.stop().expect("stop");
    assert_eq!(pool.in_use(), 0);

    // A panicking closure is reported as an error, not a crash (quietly: the panic is expected).
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let r = eal.scope(|s| s.launch(1, || panic!("boom")).expect("launch").join());
    std::panic::set_hook(hook);
    assert!(matches!(r, Err(Error::LcorePanicked(1))));
}
