//! The real firewall: hands our batches to `nft -j -f -` (the libnftables
//! JSON interface) through the `nftables` crate, and lists our table back.
//!
//! Invariant: every nft invocation names `inet rcompose` (or only lists the
//! names of inet tables), except that the `FORWARD` chains of the `filter`
//! tables are listed, and our own tagged rules in them changed (see
//! `exempt`); the host's full ruleset is never listed or parsed.
//! nft acts on the network namespace of the calling thread, because the
//! process it spawns inherits it.

use std::ffi::{OsStr, OsString};

use nftables::helper::{self, DEFAULT_ARGS, NftablesError};
use nftables::schema::{NfListObject, NfObject, Nftables};
use nftables::types::NfFamily;

use super::exempt::{FOREIGN_FORWARD, ForeignChain, plan};
use super::render::render_removal;
use super::{Firewall, FirewallError, TABLE};

/// The `nft` binary, found on `PATH` unless a path is given.
#[derive(Debug, Clone, Default)]
pub struct NftFirewall {
    program: Option<OsString>,
}

impl NftFirewall {
    /// Uses `nft` from `PATH`.
    pub fn new() -> NftFirewall {
        NftFirewall::default()
    }

    /// Uses the given `nft` program.
    pub fn with_program(program: impl Into<OsString>) -> NftFirewall {
        NftFirewall {
            program: Some(program.into()),
        }
    }

    fn program(&self) -> Option<&OsStr> {
        self.program.as_deref()
    }

    /// Our table as nft reports it (with handles), or `None` when absent.
    pub fn list_ours(&self) -> Result<Option<Nftables<'static>>, FirewallError> {
        let args = ["list", "table", "inet", TABLE];
        match helper::get_current_ruleset_with_args(self.program(), &args) {
            Ok(listed) => Ok(Some(listed)),
            // nft's "no such table" text is localized, so ask again in a
            // form whose answer does not depend on the message.
            Err(err @ NftablesError::NftFailed { .. }) => match self.table_exists()? {
                false => Ok(None),
                true => Err(FirewallError::List { source: err }),
            },
            Err(source) => Err(FirewallError::List { source }),
        }
    }

    /// Whether `inet rcompose` exists, from the list of inet table names.
    fn table_exists(&self) -> Result<bool, FirewallError> {
        let listed =
            helper::get_current_ruleset_with_args(self.program(), &["list", "tables", "inet"])
                .map_err(|source| FirewallError::List { source })?;
        Ok(listed.objects.iter().any(|obj| {
            matches!(obj, NfObject::ListObject(NfListObject::Table(t))
                if t.family == NfFamily::INet && t.name == TABLE)
        }))
    }
}

impl NftFirewall {
    /// The chain as JSON, `None` when it does not exist (or cannot be read:
    /// then there is nothing we could change either).
    fn list_chain(&self, family: &str, table: &str, chain: &str) -> Option<serde_json::Value> {
        let args = ["list", "chain", family, table, chain];
        let text = helper::get_current_ruleset_raw(self.program(), &args).ok()?;
        serde_json::from_str(&text).ok()
    }
}

impl Firewall for NftFirewall {
    fn apply(&self, ruleset: &Nftables<'static>) -> Result<(), FirewallError> {
        helper::apply_ruleset_with_args(ruleset, self.program(), DEFAULT_ARGS)
            .map_err(|source| FirewallError::Apply { source })
    }

    fn remove(&self) -> Result<(), FirewallError> {
        helper::apply_ruleset_with_args(&render_removal(), self.program(), DEFAULT_ARGS)
            .map_err(|source| FirewallError::Remove { source })
    }

    fn exempt_forward(&self, bridges: &[String]) -> Result<(), FirewallError> {
        // One nft run per chain, at once: each costs milliseconds, mostly
        // nft starting up, and an `up` or `down` waits for them.
        let listings: Vec<Option<serde_json::Value>> = std::thread::scope(|scope| {
            let runs: Vec<_> = FOREIGN_FORWARD
                .iter()
                .map(|(family, table, chain)| {
                    scope.spawn(move || self.list_chain(family, table, chain))
                })
                .collect();
            runs.into_iter()
                .map(|run| run.join().unwrap_or(None))
                .collect()
        });
        for ((family, table, chain), listing) in FOREIGN_FORWARD.iter().zip(listings) {
            let Some(listing) = listing else {
                continue;
            };
            let found = ForeignChain::from_listing(&listing);
            if let Some(batch) = plan(family, table, chain, &found, bridges) {
                helper::apply_ruleset_raw(&batch.to_string(), self.program(), DEFAULT_ARGS)
                    .map_err(|source| FirewallError::Exempt {
                        chain: format!("{family} {table} {chain}"),
                        source,
                    })?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_nft_program_is_an_apply_error_naming_the_table() {
        let fw = NftFirewall::with_program("/nonexistent/nft");
        let err = fw.apply(&render_removal()).unwrap_err();
        assert!(matches!(
            err,
            FirewallError::Apply {
                source: NftablesError::NftExecution { .. }
            }
        ));
        assert_eq!(
            err.to_string(),
            "failed to apply the rcompose nftables table (inet rcompose)"
        );
    }

    #[test]
    fn a_missing_nft_program_is_a_list_error_not_an_absent_table() {
        let fw = NftFirewall::with_program("/nonexistent/nft");
        assert!(matches!(fw.list_ours(), Err(FirewallError::List { .. })));
    }
}
