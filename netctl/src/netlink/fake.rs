//! A strict in-memory link layer for tests of the network manager without
//! root: it keeps the links a real kernel would have, records every call,
//! fails on request, and panics on calls no correct manager makes (a veth
//! on a bridge that does not exist).

use std::collections::BTreeSet;
use std::sync::Mutex;

use ipnet::IpNet;

use super::{AttachSpec, BridgeSpec, Netlink, NetlinkError, Result};

/// One call the fake received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `host_routes`.
    HostRoutes,
    /// `ensure_bridge`.
    EnsureBridge(BridgeSpec),
    /// `remove_link`.
    RemoveLink(String),
    /// `attach`.
    Attach(AttachSpec),
    /// `link_names`.
    LinkNames,
    /// `link_exists` of a name.
    LinkExists(String),
}

#[derive(Debug, Default)]
struct State {
    calls: Vec<Call>,
    links: BTreeSet<String>,
    fail_on: Option<usize>,
}

/// The fake; `host_routes` answers what it was built with.
#[derive(Debug, Default)]
pub struct FakeNetlink {
    routes: Vec<IpNet>,
    state: Mutex<State>,
}

impl FakeNetlink {
    /// A host with these routes and no links.
    pub fn with_routes(routes: Vec<IpNet>) -> FakeNetlink {
        FakeNetlink {
            routes,
            state: Mutex::default(),
        }
    }

    /// Makes the `n`th call from now (1-based) fail once.
    pub fn fail_on_call(&self, n: usize) {
        let mut state = self.state.lock().expect("fake state");
        state.fail_on = Some(state.calls.len() + n);
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().expect("fake state").calls.clone()
    }

    /// The links that exist now.
    pub fn links(&self) -> BTreeSet<String> {
        self.state.lock().expect("fake state").links.clone()
    }

    /// Adds a link as if someone else (or a crash) had left it.
    pub fn add_link(&self, name: &str) {
        self.state
            .lock()
            .expect("fake state")
            .links
            .insert(name.into());
    }

    /// Records `call`; runs `change` on the links unless this call fails.
    fn record(&self, call: Call, change: impl FnOnce(&mut BTreeSet<String>)) -> Result<()> {
        let mut state = self.state.lock().expect("fake state");
        state.calls.push(call);
        if state.fail_on == Some(state.calls.len()) {
            return Err(NetlinkError::Missing("injected failure".into()));
        }
        change(&mut state.links);
        Ok(())
    }
}

impl Netlink for FakeNetlink {
    async fn host_routes(&self) -> Result<Vec<IpNet>> {
        self.record(Call::HostRoutes, |_| {})?;
        Ok(self.routes.clone())
    }

    async fn ensure_bridge(&self, spec: &BridgeSpec) -> Result<()> {
        self.record(Call::EnsureBridge(spec.clone()), |links| {
            links.insert(spec.name.clone());
        })
    }

    async fn remove_link(&self, name: &str) -> Result<()> {
        self.record(Call::RemoveLink(name.into()), |links| {
            links.remove(name);
        })
    }

    async fn attach(&self, spec: &AttachSpec) -> Result<()> {
        assert!(
            self.links().contains(&spec.bridge),
            "attach to bridge {} that was never created",
            spec.bridge
        );
        self.record(Call::Attach(spec.clone()), |links| {
            links.insert(spec.host_veth.clone());
        })
    }

    async fn link_names(&self) -> Result<Vec<String>> {
        self.record(Call::LinkNames, |_| {})?;
        Ok(self.links().into_iter().collect())
    }

    async fn link_exists(&self, name: &str) -> Result<bool> {
        self.record(Call::LinkExists(name.into()), |_| {})?;
        Ok(self.links().contains(name))
    }
}
