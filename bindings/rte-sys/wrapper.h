/* Every DPDK header ferrowall uses. bindgen reads this file; its static inline functions get
 * generated C wrappers (bindgen's wrap_static_fns), compiled by build.rs. */
#include <rte_config.h>
#include <rte_common.h>
#include <rte_errno.h>
#include <rte_eal.h>
#include <rte_lcore.h>
#include <rte_launch.h>
#include <rte_cycles.h>
#include <rte_mempool.h>
#include <rte_mbuf.h>
#include <rte_ethdev.h>
#include <rte_ring.h>
#include <rte_version.h>

/* rte_errno is a thread-local variable behind a macro, which no FFI generator can bind.
 * This accessor is the only hand-written line of C; bindgen wraps it like any static inline. */
static inline int rte_errno_get(void) { return rte_errno; }
