//! Answers to rejected packets: a TCP RST for TCP, ICMP/ICMPv6 "administratively prohibited"
//! for everything else, sent back out of the port the packet came in on, rate limited.
//!
//! The answer looks as if the destination itself refused: addresses and ports swapped, the
//! original VLAN tags kept. Nothing answers an ICMP error, a RST, a later fragment, or a
//! multicast or broadcast packet (RFC 1122 3.2.2, RFC 4443 2.4).

use std::net::IpAddr;

use crate::packet::{IpPacket, L4, proto};
use crate::wire::{ethernet, icmp, ipv4, ipv6, tcp};

/// Most bytes of the rejected packet quoted in an ICMPv4 error (576 - 20 - 8, as Linux does).
const QUOTE_V4: usize = 548;
/// Most bytes quoted in an ICMPv6 error, so the answer fits the IPv6 minimum MTU (1280 - 48).
const QUOTE_V6: usize = 1232;
/// Hop limit / TTL of answers.
const TTL: u8 = 64;

fn is_unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => !a.is_multicast() && !a.is_broadcast() && !a.is_unspecified(),
        IpAddr::V6(a) => !a.is_multicast() && !a.is_unspecified(),
    }
}

/// Writes the answer to the rejected packet `p` (parsed from `frame`) into `out`; returns
/// `false` (and writes nothing) when the packet must not be answered.
pub fn answer(frame: &[u8], p: &IpPacket, out: &mut Vec<u8>) -> bool {
    let (src, dst) = (p.src_ip(), p.dst_ip());
    // A frame sent to a group MAC address (broadcast or multicast) is not answered either,
    // whatever its IP destination (a subnet's directed broadcast, say).
    let group_mac = frame.first().is_some_and(|b| b & 1 != 0);
    if group_mac || !is_unicast(src) || !is_unicast(dst) || p.frag.is_some_and(|f| !f.is_first()) {
        return false;
    }
    match p.l4 {
        L4::Tcp {
            sport,
            dport,
            flags,
            seq,
            ack,
            payload_len,
        } => {
            if flags & tcp::flags::RST != 0 {
                return false;
            }
            // RFC 9293 3.10.7.1: answer an ACK with seq = its ack; anything else with ack =
            // its seq + the sequence space it occupies.
            let rst = if flags & tcp::flags::ACK != 0 {
                tcp::Repr {
                    src_port: dport,
                    dst_port: sport,
                    seq: ack,
                    ack: 0,
                    flags: tcp::flags::RST,
                    window: 0,
                }
            } else {
                let space = u32::from(payload_len)
                    + u32::from(flags & tcp::flags::SYN != 0)
                    + u32::from(flags & tcp::flags::FIN != 0);
                tcp::Repr {
                    src_port: dport,
                    dst_port: sport,
                    seq: 0,
                    ack: seq.wrapping_add(space),
                    flags: tcp::flags::RST | tcp::flags::ACK,
                    window: 0,
                }
            };
            emit_l2_l3(frame, p, proto::TCP, tcp::HEADER_LEN, out);
            rst.emit(dst, src, out);
            true
        }
        L4::Icmp { ty, .. }
            if (p.is_v6() && icmp::v6::is_error(ty)) || (!p.is_v6() && icmp::v4::is_error(ty)) =>
        {
            false
        }
        _ => {
            let ip = &frame[usize::from(p.l3_offset)..usize::from(p.ip_end)];
            let (msg_type, code, quote, l4proto) = if p.is_v6() {
                (
                    icmp::v6::DEST_UNREACHABLE,
                    icmp::v6::CODE_ADMIN_PROHIBITED,
                    QUOTE_V6,
                    proto::ICMPV6,
                )
            } else {
                (
                    icmp::v4::DEST_UNREACHABLE,
                    icmp::v4::CODE_ADMIN_PROHIBITED,
                    QUOTE_V4,
                    proto::ICMP,
                )
            };
            let e = icmp::ErrorRepr {
                msg_type,
                code,
                quoted: &ip[..ip.len().min(quote)],
            };
            emit_l2_l3(frame, p, l4proto, e.len(), out);
            e.emit(p.is_v6().then_some((dst, src)), out);
            true
        }
    }
}

/// The reply's link and network headers, from the destination back to the source.
fn emit_l2_l3(frame: &[u8], p: &IpPacket, l4proto: u8, l4_len: usize, out: &mut Vec<u8>) {
    match (p.dst_ip(), p.src_ip()) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            ethernet::emit_reply(
                frame,
                usize::from(p.l3_offset),
                ethernet::ethertype::IPV4,
                out,
            );
            ipv4::Repr {
                src,
                dst,
                protocol: l4proto,
                payload_len: l4_len,
                ttl: TTL,
            }
            .emit(out);
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            ethernet::emit_reply(
                frame,
                usize::from(p.l3_offset),
                ethernet::ethertype::IPV6,
                out,
            );
            ipv6::Repr {
                src,
                dst,
                next_header: l4proto,
                payload_len: l4_len,
                hop_limit: TTL,
            }
            .emit(out);
        }
        _ => {}
    }
}

/// A token bucket limiting answers per second.
#[derive(Debug, Clone)]
pub struct RateLimit {
    rate: u64,
    /// Tokens scaled by 1e9 (one token = 1e9), so refills stay integral.
    tokens: u64,
    last: u64,
}

const NANOS: u64 = 1_000_000_000;

impl RateLimit {
    /// `rate` answers per second, bursts up to `rate` (0: never answer).
    pub fn new(rate: u32) -> Self {
        let rate = u64::from(rate);
        RateLimit {
            rate,
            tokens: rate * NANOS,
            last: 0,
        }
    }

    /// Changes the rate (reload), keeping at most a full bucket.
    pub fn set_rate(&mut self, rate: u32) {
        self.rate = u64::from(rate);
        self.tokens = self.tokens.min(self.rate * NANOS);
    }

    /// Takes a token if one is left at time `now` (ns).
    pub fn allow(&mut self, now: u64) -> bool {
        let elapsed = now.saturating_sub(self.last);
        self.last = self.last.max(now);
        self.tokens = (self
            .tokens
            .saturating_add(elapsed.saturating_mul(self.rate)))
        .min(self.rate * NANOS);
        if self.tokens >= NANOS {
            self.tokens -= NANOS;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit() {
        let mut r = RateLimit::new(2);
        assert!(r.allow(0) && r.allow(0));
        assert!(!r.allow(0));
        assert!(!r.allow(NANOS / 4));
        assert!(r.allow(NANOS / 2));
        assert!(!RateLimit::new(0).allow(10 * NANOS));
    }
}
