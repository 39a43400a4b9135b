//! The host firewall for our networks: NAT, published ports and isolation,
//! all in one nftables table, `inet rcompose`.
//!
//! Invariants:
//! - `inet rcompose` is the only table rcompose creates, changes, lists or
//!   deletes; the host's other tables are never read, so rules we cannot
//!   model elsewhere in the ruleset cannot break us;
//! - the table is rendered whole from a `FirewallInput` by a pure function
//!   (`render`) and replaced in one atomic batch (`Firewall::apply`), so
//!   applying twice changes nothing and stale rules cannot pile up;
//! - removal succeeds whether the table exists or not.
//!
//! Other base chains on the same hooks (iptables-nft's `filter FORWARD`,
//! firewalld, …) still see every packet we accept: an accept in our table
//! does not override a drop in theirs.

pub mod exempt;
mod input;
mod linux;
mod render;
mod stmt;
mod text;

#[cfg(any(test, feature = "testing"))]
mod fake;
#[cfg(test)]
mod tests;

use nftables::helper::NftablesError;
use nftables::schema::Nftables;

#[cfg(any(test, feature = "testing"))]
pub use fake::{Call, FakeFirewall};
pub use input::{FirewallInput, FwNetwork, FwPort};
pub use linux::NftFirewall;
pub use render::{
    CHAIN_FORWARD, CHAIN_GUARD, CHAIN_OUTPUT, CHAIN_POSTROUTING, CHAIN_PREROUTING, CHAIN_PUBLISHED,
    render, render_removal,
};
pub use text::to_nft_text;

/// Name of our table (family `inet`).
pub const TABLE: &str = "rcompose";

/// Failures of the firewall seam.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    /// nft refused or could not run the replacement batch; the previous
    /// table, if any, is still in place.
    #[error("failed to apply the rcompose nftables table (inet {TABLE})")]
    Apply {
        /// What nft (or running it) reported.
        #[source]
        source: NftablesError,
    },
    /// nft refused or could not run the removal batch.
    #[error("failed to remove the rcompose nftables table (inet {TABLE})")]
    Remove {
        /// What nft (or running it) reported.
        #[source]
        source: NftablesError,
    },
    /// Exempting our bridges from a foreign FORWARD drop policy failed.
    #[error("failed to let our bridges through {chain} (its policy is drop)")]
    Exempt {
        /// `family table chain`.
        chain: String,
        /// What nft (or running it) reported.
        #[source]
        source: NftablesError,
    },
    /// Listing our table (or checking whether it exists) failed.
    #[error("failed to list the rcompose nftables table (inet {TABLE})")]
    List {
        /// What nft (or running it) reported.
        #[source]
        source: NftablesError,
    },
}

/// Installs and removes the `inet rcompose` table.
pub trait Firewall {
    /// Runs a batch from [`render`]: the table afterwards is exactly what
    /// was rendered, or, on error, exactly what it was before.
    fn apply(&self, ruleset: &Nftables<'static>) -> Result<(), FirewallError>;
    /// Deletes the table; an absent table is success.
    fn remove(&self) -> Result<(), FirewallError>;
    /// Makes a foreign `FORWARD` chain that drops by default accept traffic
    /// of exactly these bridges (see [`exempt`]); an empty list removes our
    /// rules from it.
    fn exempt_forward(&self, bridges: &[String]) -> Result<(), FirewallError>;
}

impl<F: Firewall + ?Sized> Firewall for &F {
    fn apply(&self, ruleset: &Nftables<'static>) -> Result<(), FirewallError> {
        (**self).apply(ruleset)
    }

    fn remove(&self) -> Result<(), FirewallError> {
        (**self).remove()
    }

    fn exempt_forward(&self, bridges: &[String]) -> Result<(), FirewallError> {
        (**self).exempt_forward(bridges)
    }
}
