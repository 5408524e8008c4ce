//! Why a packet was dropped: one enum, one counter per variant in every worker (VPP's
//! per-node error counters), one stable name per variant in logs and metrics.

use crate::wire::Malformed;

macro_rules! drop_reasons {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, $log:literal, $malformed:literal; )*) => {
        /// Why a packet was dropped.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum DropReason {
            $( $(#[$doc])* $variant, )*
        }

        impl DropReason {
            /// Every reason, in declaration order (the index of a reason is its position).
            pub const ALL: &'static [DropReason] = &[$(DropReason::$variant,)*];
            /// Number of reasons: the size of per-reason counter arrays.
            pub const COUNT: usize = Self::ALL.len();

            /// The stable name used as the `reason` label of `ferrowall_drops_total`.
            pub fn as_str(self) -> &'static str {
                match self { $(DropReason::$variant => $name,)* }
            }

            /// The stable name used in verdict logs (`reason`, or `detail` of `malformed`).
            pub fn log_name(self) -> &'static str {
                match self { $(DropReason::$variant => $log,)* }
            }

            /// Whether the packet itself was malformed (the verdict log says `malformed` and
            /// gives this reason as `detail`).
            pub fn is_malformed(self) -> bool {
                match self { $(DropReason::$variant => $malformed,)* }
            }
        }
    };
}

drop_reasons! {
    /// The frame ends inside a header, or before what a length field announces.
    Truncated = "truncated", "truncated", true;
    /// More than two VLAN tags.
    VlanDepth = "vlan_depth", "vlan-depth", true;
    /// An EtherType other than IPv4, IPv6 or ARP.
    NonIp = "non_ip", "non-ip", false;
    /// Bad IPv4 version or header length.
    Ipv4Header = "ipv4_header", "ipv4-header", true;
    /// IPv4 total length below the header length.
    Ipv4Length = "ipv4_length", "ipv4-length", true;
    /// Bad IPv6 version or payload length.
    Ipv6Length = "ipv6_length", "ipv6-length", true;
    /// IPv6 extension-header chain too long, out of order or cut short.
    Ipv6ExtHeader = "ipv6_ext_header", "ipv6-ext-header", true;
    /// TCP data offset out of range.
    TcpHeader = "tcp_header", "tcp-header", true;
    /// UDP length out of range.
    UdpLength = "udp_length", "udp-length", true;
    /// A first fragment without the whole transport header, or a fragment overlapping it.
    FragmentTooSmall = "fragment_too_small", "fragment-too-small", true;
    /// A later fragment whose first fragment did not arrive within `[flows].fragment_timeout`.
    FragmentNoFirst = "fragment_no_first", "fragment-no-first", false;
    /// The fragment table was full (`[flows].fragment_capacity`).
    FragmentTableFull = "fragment_table_full", "fragment-table-full", false;
    /// A packet that can not open a flow (TCP without SYN, echo reply) and belongs to none.
    NoFlow = "no_flow", "no-flow", false;
    /// An ICMP error quoting a flow that does not exist.
    IcmpErrorNoFlow = "icmp_error_no_flow", "icmp-error-no-flow", false;
    /// A new flow refused because the worker's flow table is full (`[flows].capacity`).
    FlowTableFull = "flow_table_full", "flow-table-full", false;
    /// A rule with action drop or reject decided.
    Rule = "rule", "rule", false;
    /// No rule matched and the default action is drop or reject.
    Default = "default", "default", false;
}

impl DropReason {
    /// The index of this reason in per-reason arrays.
    #[inline]
    pub fn index(self) -> usize {
        self as usize
    }
}

impl From<Malformed> for DropReason {
    fn from(m: Malformed) -> Self {
        match m {
            Malformed::Truncated => DropReason::Truncated,
            Malformed::VlanDepth => DropReason::VlanDepth,
            Malformed::Ipv4Header => DropReason::Ipv4Header,
            Malformed::Ipv4Length => DropReason::Ipv4Length,
            Malformed::Ipv6Length => DropReason::Ipv6Length,
            Malformed::Ipv6ExtHeader => DropReason::Ipv6ExtHeader,
            Malformed::TcpHeader => DropReason::TcpHeader,
            Malformed::UdpLength => DropReason::UdpLength,
            Malformed::FragmentTooSmall => DropReason::FragmentTooSmall,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_indexes_dense() {
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
        for r in DropReason::ALL {
            assert_eq!(r.log_name(), r.as_str().replace('_', "-"));
        }
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }
}
