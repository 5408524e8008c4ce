//! What the pipeline decided about a packet, and why.

use crate::drop::DropReason;

/// The fate of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Forwarded unchanged out of the other port.
    Allow,
    /// Dropped silently.
    Drop,
    /// Dropped, and the sender told (TCP RST or ICMP administratively prohibited).
    Reject,
}

impl Verdict {
    /// `allow`, `drop` or `reject`, as in the verdict log.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Drop => "drop",
            Verdict::Reject => "reject",
        }
    }

    /// The verdict of a rule action.
    pub fn of(action: config::Action) -> Verdict {
        match action {
            config::Action::Allow => Verdict::Allow,
            config::Action::Drop => Verdict::Drop,
            config::Action::Reject => Verdict::Reject,
        }
    }
}

/// Why the verdict is what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A rule decided a new flow (or re-decided a live one after a policy change).
    Rule,
    /// No rule matched: the default action.
    Default,
    /// A packet of a flow already allowed.
    Established,
    /// An ICMP error about a flow that exists.
    Related,
    /// A later IP fragment following its first fragment's verdict.
    Fragment,
    /// ARP or IPv6 neighbour/router discovery, which a bridge always passes.
    Bridge,
    /// A DNS answer that matches no query seen on its flow: it passes (its flow is allowed) but
    /// is never learned from.
    NoQuery,
    /// Dropped for a reason other than a rule (malformed, no flow, table full, ...).
    Dropped(DropReason),
}

impl Reason {
    /// The `reason` field of the verdict log.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Rule => "rule",
            Reason::Default => "default",
            Reason::Established => "established",
            Reason::Related => "related",
            Reason::Fragment => "fragment",
            Reason::Bridge => "bridge",
            Reason::NoQuery => "no-query",
            Reason::Dropped(d) if d.is_malformed() => "malformed",
            Reason::Dropped(d) => d.log_name(),
        }
    }

    /// The precise drop reason behind `malformed` (the verdict log's `detail`).
    pub fn detail(self) -> Option<&'static str> {
        match self {
            Reason::Dropped(d) if d.is_malformed() => Some(d.log_name()),
            _ => None,
        }
    }
}

/// A packet's verdict with its reason and deciding rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Allow, drop or reject.
    pub verdict: Verdict,
    /// Why.
    pub reason: Reason,
    /// Index of the deciding rule in the policy of the generation below.
    pub rule: Option<u32>,
    /// Policy generation that decided.
    pub generation: u64,
}

impl Decision {
    /// A drop for `reason` outside the rules.
    pub fn dropped(reason: DropReason, generation: u64) -> Decision {
        Decision {
            verdict: Verdict::Drop,
            reason: Reason::Dropped(reason),
            rule: None,
            generation,
        }
    }
}
