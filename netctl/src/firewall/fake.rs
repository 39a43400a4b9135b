//! An in-memory firewall for tests (feature `testing`): records every call,
//! keeps the installed table, and fails on request.
//!
//! It is strict: a batch that does not start by replacing `inet rcompose`,
//! or that touches any other table, is a bug in the caller and panics, so
//! tests catch what the real nft would have done to the host's tables.

use std::sync::Mutex;

use nftables::helper::NftablesError;
use nftables::schema::{NfCmd, NfListObject, NfObject, Nftables};
use nftables::types::NfFamily;

use super::{Firewall, FirewallError, TABLE};

/// One call made to the fake, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `apply` with this batch.
    Apply(Nftables<'static>),
    /// `remove`.
    Remove,
    /// `exempt_forward` with these bridges.
    ExemptForward(Vec<String>),
}

/// A firewall that lives in memory.
#[derive(Debug, Default)]
pub struct FakeFirewall {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    calls: Vec<Call>,
    installed: Option<Nftables<'static>>,
    fail_on: Vec<usize>,
}

impl FakeFirewall {
    /// A fake with no table installed.
    pub fn new() -> FakeFirewall {
        FakeFirewall::default()
    }

    /// Makes the `n`th call (1-based, counting every call) fail, leaving
    /// the installed table as it was.
    pub fn fail_on_call(&self, n: usize) {
        self.lock().fail_on.push(n);
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// The last successfully applied batch, `None` after a removal.
    pub fn installed(&self) -> Option<Nftables<'static>> {
        self.lock().installed.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panicking test thread must not hide the fake's state from others.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records `call`; `Err` when this call was set up to fail.
    fn record(&self, call: Call) -> Result<(), NftablesError> {
        let mut state = self.lock();
        state.calls.push(call.clone());
        let n = state.calls.len();
        if state.fail_on.contains(&n) {
            return Err(NftablesError::NftFailed {
                program: "fake-nft".into(),
                hint: format!("running call {n}, which the test made fail"),
                stdout: String::new(),
                stderr: String::new(),
            });
        }
        match call {
            Call::Apply(ruleset) => state.installed = Some(ruleset),
            Call::Remove => state.installed = None,
            Call::ExemptForward(_) => {}
        }
        Ok(())
    }
}

impl Firewall for FakeFirewall {
    fn apply(&self, ruleset: &Nftables<'static>) -> Result<(), FirewallError> {
        check_replaces_only_our_table(ruleset);
        self.record(Call::Apply(ruleset.clone()))
            .map_err(|source| FirewallError::Apply { source })
    }

    fn remove(&self) -> Result<(), FirewallError> {
        self.record(Call::Remove)
            .map_err(|source| FirewallError::Remove { source })
    }

    fn exempt_forward(&self, bridges: &[String]) -> Result<(), FirewallError> {
        self.record(Call::ExemptForward(bridges.to_vec()))
            .map_err(|source| FirewallError::Exempt {
                chain: "ip filter FORWARD".into(),
                source,
            })
    }
}

fn check_replaces_only_our_table(ruleset: &Nftables<'_>) {
    let kinds: Vec<&str> = ruleset
        .objects
        .iter()
        .take(3)
        .map(command_on_our_table)
        .collect();
    assert_eq!(
        kinds,
        ["add table", "delete table", "add table"],
        "FakeFirewall: a batch must start by replacing table inet {TABLE}"
    );
    for obj in ruleset.objects.iter() {
        assert!(
            belongs_to_us(obj),
            "FakeFirewall: batch touches something outside inet {TABLE}: {obj:?}"
        );
    }
}

fn command_on_our_table(obj: &NfObject<'_>) -> &'static str {
    match obj {
        NfObject::CmdObject(NfCmd::Add(NfListObject::Table(t))) if is_ours(t.family, &t.name) => {
            "add table"
        }
        NfObject::CmdObject(NfCmd::Delete(NfListObject::Table(t)))
            if is_ours(t.family, &t.name) =>
        {
            "delete table"
        }
        _ => "something else",
    }
}

fn belongs_to_us(obj: &NfObject<'_>) -> bool {
    let NfObject::CmdObject(NfCmd::Add(inner) | NfCmd::Delete(inner)) = obj else {
        return false;
    };
    match inner {
        NfListObject::Table(t) => is_ours(t.family, &t.name),
        NfListObject::Chain(c) => is_ours(c.family, &c.table),
        NfListObject::Rule(r) => is_ours(r.family, &r.table),
        _ => false,
    }
}

fn is_ours(family: NfFamily, table: &str) -> bool {
    family == NfFamily::INet && table == TABLE
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use nftables::batch::Batch;
    use nftables::schema::Table;

    use super::*;
    use crate::firewall::{FirewallInput, render};

    #[test]
    fn the_fake_records_applies_and_removals_in_order() {
        let fw = FakeFirewall::new();
        let ruleset = render(&FirewallInput::default());
        fw.apply(&ruleset).unwrap();
        fw.remove().unwrap();
        assert_eq!(fw.calls(), [Call::Apply(ruleset), Call::Remove]);
        assert_eq!(fw.installed(), None);
    }

    #[test]
    fn an_injected_failure_keeps_the_previous_table() {
        let fw = FakeFirewall::new();
        let first = render(&FirewallInput::default());
        fw.apply(&first).unwrap();
        fw.fail_on_call(2);
        assert!(matches!(fw.remove(), Err(FirewallError::Remove { .. })));
        assert_eq!(fw.installed(), Some(first));
        assert_eq!(fw.calls().len(), 2);
    }

    #[test]
    #[should_panic(expected = "outside inet rcompose")]
    fn the_fake_panics_on_a_batch_touching_another_table() {
        let mut batch = Batch::new();
        batch.add_all(render(&FirewallInput::default()).objects.iter().cloned());
        let foreign = Table {
            family: NfFamily::IP,
            name: Cow::Borrowed("filter"),
            handle: None,
        };
        batch.delete(NfListObject::Table(foreign));
        let _ = FakeFirewall::new().apply(&batch.to_nftables());
    }

    #[test]
    #[should_panic(expected = "must start by replacing")]
    fn the_fake_panics_on_a_batch_that_does_not_replace_the_table() {
        let mut batch = Batch::new();
        batch.add_all(
            render(&FirewallInput::default())
                .objects
                .iter()
                .skip(1)
                .cloned(),
        );
        let _ = FakeFirewall::new().apply(&batch.to_nftables());
    }
}
