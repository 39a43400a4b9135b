//! The kernel-facing link layer: bridges, veth pairs, addresses and routes,
//! through rtnetlink. Also the sysctls a bridge network needs.
//!
//! `Netlink` is the seam the network manager uses; `LinuxNetlink` is the real
//! implementation. Work inside a container's network namespace goes through a
//! netlink socket opened by a short-lived thread that joined that namespace
//! first: a socket stays bound to the namespace it was created in, so the
//! caller's own threads never change namespace.
//!
//! Every operation is idempotent: creating what exists and deleting what is
//! gone both succeed, so a failed apply can be re-run.

use std::fs::File;
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use futures_util::TryStreamExt;
use ipnet::IpNet;
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
use nix::sched::{CloneFlags, setns};
#[cfg(any(test, feature = "testing"))]
mod fake;
#[cfg(any(test, feature = "testing"))]
pub use fake::{Call, FakeNetlink};

use rtnetlink::{
    Handle, LinkBridge, LinkBridgePort, LinkUnspec, LinkVeth, RouteMessageBuilder, new_connection,
};

/// A bridge as a network needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeSpec {
    /// Device name (≤ 15 bytes).
    pub name: String,
    /// MTU; `None` leaves the kernel's default.
    pub mtu: Option<u32>,
    /// Gateway addresses with the subnet's prefix length.
    pub addresses: Vec<IpNet>,
}

/// One container interface: a veth pair from `bridge` into `netns`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachSpec {
    /// Bridge the host side is enslaved to.
    pub bridge: String,
    /// Host-side veth name.
    pub host_veth: String,
    /// Network namespace file of the container.
    pub netns: PathBuf,
    /// Interface name inside the container (`eth0`, …).
    pub ifname: String,
    /// MAC address of the container side.
    pub mac: [u8; 6],
    /// Addresses of the container side.
    pub addresses: Vec<IpNet>,
    /// Gateways for default routes (empty: no default route).
    pub gateways: Vec<IpAddr>,
    /// MTU of both ends.
    pub mtu: Option<u32>,
}

/// Failures of the link layer.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// No netlink socket could be opened.
    #[error("failed to open a netlink socket")]
    Socket(#[source] std::io::Error),
    /// Entering a network namespace failed.
    #[error("failed to enter network namespace {0}")]
    Netns(PathBuf, #[source] std::io::Error),
    /// A netlink request failed.
    #[error("failed to {what}")]
    Request {
        /// What we were doing, e.g. "create bridge rc-0123".
        what: String,
        /// The kernel's answer.
        #[source]
        source: rtnetlink::Error,
    },
    /// A sysctl could not be written.
    #[error("failed to set sysctl {0}")]
    Sysctl(String, #[source] std::io::Error),
    /// A link we just created is not there.
    #[error("link {0} not found")]
    Missing(String),
}

/// Result of the link layer.
pub type Result<T> = std::result::Result<T, NetlinkError>;

/// The link operations the network manager needs.
pub trait Netlink {
    /// Destinations of the host's routes (without default routes).
    fn host_routes(&self) -> impl Future<Output = Result<Vec<IpNet>>>;
    /// Creates the bridge if missing, sets MTU and addresses, brings it up.
    fn ensure_bridge(&self, spec: &BridgeSpec) -> impl Future<Output = Result<()>>;
    /// Deletes a link by name; a missing link is success.
    fn remove_link(&self, name: &str) -> impl Future<Output = Result<()>>;
    /// Creates a veth pair from the bridge into the container's namespace
    /// and configures the container side.
    fn attach(&self, spec: &AttachSpec) -> impl Future<Output = Result<()>>;
    /// Names of every link in the host namespace.
    fn link_names(&self) -> impl Future<Output = Result<Vec<String>>>;
    /// Whether a link called `name` exists in the host namespace: one
    /// lookup by name, not a dump of every link.
    fn link_exists(&self, name: &str) -> impl Future<Output = Result<bool>>;
}

/// The real link layer, acting on the calling thread's network namespace.
#[derive(Debug, Clone, Default)]
pub struct LinuxNetlink;

impl LinuxNetlink {
    /// The link layer of the calling thread's network namespace.
    pub fn new() -> LinuxNetlink {
        LinuxNetlink
    }
}

impl Netlink for LinuxNetlink {
    async fn host_routes(&self) -> Result<Vec<IpNet>> {
        let nl = Nl::here()?;
        let mut out = nl
            .routes(RouteMessageBuilder::<IpAddr>::new().build())
            .await?;
        out.retain(|n| n.prefix_len() != 0);
        Ok(out)
    }

    async fn ensure_bridge(&self, spec: &BridgeSpec) -> Result<()> {
        let nl = Nl::here()?;
        let index = nl.ensure_bridge(&spec.name).await?;
        if let Some(mtu) = spec.mtu {
            nl.set(
                LinkUnspec::new_with_index(index).mtu(mtu).build(),
                "set mtu",
                &spec.name,
            )
            .await?;
        }
        if spec.addresses.iter().any(|a| a.addr().is_ipv6()) {
            // Without duplicate address detection the gateway address is
            // usable at once: the DNS server binds it right away.
            write_sysctl(&format!("net/ipv6/conf/{}/disable_ipv6", spec.name), "0")?;
            write_sysctl(&format!("net/ipv6/conf/{}/accept_dad", spec.name), "0")?;
            write_sysctl("net/ipv6/conf/all/forwarding", "1")?;
        }
        for net in &spec.addresses {
            nl.add_address(index, net, &spec.name).await?;
        }
        // 127.0.0.1:port → container needs loopback sources routed out of
        // the bridge (the firewall's guard chain drops the reverse way).
        write_sysctl(&format!("net/ipv4/conf/{}/route_localnet", spec.name), "1")?;
        write_sysctl("net/ipv4/ip_forward", "1")?;
        nl.set(
            LinkUnspec::new_with_index(index).up().build(),
            "bring up",
            &spec.name,
        )
        .await
    }

    async fn remove_link(&self, name: &str) -> Result<()> {
        let nl = Nl::here()?;
        match nl.index(name).await? {
            Some(index) => nl.delete(index, name).await,
            None => Ok(()),
        }
    }

    async fn attach(&self, spec: &AttachSpec) -> Result<()> {
        let host = Nl::here()?;
        let netns =
            File::open(&spec.netns).map_err(|e| NetlinkError::Netns(spec.netns.clone(), e))?;
        // An interface made in a namespace takes its defaults: no duplicate
        // address detection, so the container's IPv6 address works at once.
        // Best effort: a kernel booted without IPv6 has no such keys.
        in_netns_thread(&netns, &spec.netns, || {
            let _ = write_sysctl("net/ipv6/conf/default/accept_dad", "0");
            let _ = write_sysctl("net/ipv6/conf/all/accept_dad", "0");
            Ok(())
        })?;
        host.create_veth(spec, &netns).await?;
        let result = self.attach_created(&host, &netns, spec).await;
        if result.is_err() {
            // Leave nothing half-made: the next apply starts from scratch.
            let _ = self.remove_link(&spec.host_veth).await;
        }
        result
    }

    async fn link_names(&self) -> Result<Vec<String>> {
        Nl::here()?.link_names().await
    }

    async fn link_exists(&self, name: &str) -> Result<bool> {
        Ok(Nl::here()?.index(name).await?.is_some())
    }
}

impl LinuxNetlink {
    async fn attach_created(&self, host: &Nl, netns: &File, spec: &AttachSpec) -> Result<()> {
        let bridge = host
            .index(&spec.bridge)
            .await?
            .ok_or_else(|| NetlinkError::Missing(spec.bridge.clone()))?;
        let veth = host
            .index(&spec.host_veth)
            .await?
            .ok_or_else(|| NetlinkError::Missing(spec.host_veth.clone()))?;
        host.set(
            LinkUnspec::new_with_index(veth).controller(bridge).build(),
            "enslave",
            &spec.host_veth,
        )
        .await?;
        // Hairpin lets a container reach itself through a published port.
        host.handle
            .link()
            .set_port(LinkBridgePort::new(veth).hairpin(true).build())
            .execute()
            .await
            .map_err(|e| request(format!("set hairpin on {}", spec.host_veth), e))?;
        host.set(
            LinkUnspec::new_with_index(veth).up().build(),
            "bring up",
            &spec.host_veth,
        )
        .await?;
        let inside = Nl::in_netns(netns, &spec.netns)?;
        inside.configure_container_side(spec).await
    }
}

/// One netlink socket with its connection task running.
struct Nl {
    handle: Handle,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Nl {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Nl {
    /// A socket in the calling thread's namespace.
    fn here() -> Result<Nl> {
        let (conn, handle, _) = new_connection().map_err(NetlinkError::Socket)?;
        let task = tokio::spawn(conn);
        Ok(Nl { handle, task })
    }

    /// A socket in the namespace of `netns`, opened by a thread that joins
    /// it first; the socket keeps that namespace after the thread ends.
    fn in_netns(netns: &File, path: &Path) -> Result<Nl> {
        let fd = netns
            .try_clone()
            .map_err(|e| NetlinkError::Netns(path.into(), e))?;
        let runtime = tokio::runtime::Handle::current();
        let opened = std::thread::spawn(move || -> std::io::Result<_> {
            // The socket registers with the caller's reactor.
            let _entered = runtime.enter();
            setns(fd.as_fd(), CloneFlags::CLONE_NEWNET)?;
            new_connection()
        })
        .join()
        .map_err(|_| NetlinkError::Netns(path.into(), std::io::Error::other("thread panicked")))?;
        let (conn, handle, _) = opened.map_err(|e| NetlinkError::Netns(path.into(), e))?;
        let task = tokio::spawn(conn);
        Ok(Nl { handle, task })
    }

    async fn index(&self, name: &str) -> Result<Option<u32>> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        match links.try_next().await {
            Ok(Some(msg)) => Ok(Some(msg.header.index)),
            Ok(None) => Ok(None),
            Err(e) if is_errno(&e, libc::ENODEV) => Ok(None),
            Err(source) => Err(request(format!("look up link {name}"), source)),
        }
    }

    async fn set(&self, msg: LinkMessage, what: &str, name: &str) -> Result<()> {
        self.handle
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(|e| request(format!("{what} {name}"), e))
    }

    async fn delete(&self, index: u32, name: &str) -> Result<()> {
        match self.handle.link().del(index).execute().await {
            Err(e) if !is_errno(&e, libc::ENODEV) => Err(request(format!("delete link {name}"), e)),
            _ => Ok(()),
        }
    }

    async fn ensure_bridge(&self, name: &str) -> Result<u32> {
        if let Some(index) = self.index(name).await? {
            return Ok(index);
        }
        let add = self
            .handle
            .link()
            .add(LinkBridge::new(name).build())
            .execute()
            .await;
        match add {
            Err(e) if !is_errno(&e, libc::EEXIST) => {
                return Err(request(format!("create bridge {name}"), e));
            }
            _ => {}
        }
        self.index(name)
            .await?
            .ok_or_else(|| NetlinkError::Missing(name.into()))
    }

    /// Creates the pair with its container end made directly inside the
    /// container's namespace under its final name and address: moving an
    /// interface between namespaces costs an RCU grace period.
    async fn create_veth(&self, spec: &AttachSpec, netns: &File) -> Result<()> {
        // A leftover pair of a crashed attach is replaced, not reused.
        if let Some(index) = self.index(&spec.host_veth).await? {
            self.delete(index, &spec.host_veth).await?;
        }
        let mut peer = LinkUnspec::new_with_name(&spec.ifname)
            .address(spec.mac.to_vec())
            .setns_by_fd(netns.as_raw_fd());
        let mut builder = LinkVeth::new(&spec.host_veth, &spec.ifname);
        if let Some(mtu) = spec.mtu {
            peer = peer.mtu(mtu);
            builder = builder.mtu(mtu);
        }
        let builder = builder.set_info_data(InfoData::Veth(InfoVeth::Peer(peer.build())));
        self.handle
            .link()
            .add(builder.build())
            .execute()
            .await
            .map_err(|e| request(format!("create veth {}/{}", spec.host_veth, spec.ifname), e))
    }

    async fn add_address(&self, index: u32, net: &IpNet, link: &str) -> Result<()> {
        let add = self
            .handle
            .address()
            .add(index, net.addr(), net.prefix_len())
            .execute()
            .await;
        match add {
            Err(e) if !is_errno(&e, libc::EEXIST) => {
                Err(request(format!("add address {net} to {link}"), e))
            }
            _ => Ok(()),
        }
    }

    async fn configure_container_side(&self, spec: &AttachSpec) -> Result<()> {
        let index = self
            .index(&spec.ifname)
            .await?
            .ok_or_else(|| NetlinkError::Missing(spec.ifname.clone()))?;
        for net in &spec.addresses {
            self.add_address(index, net, &spec.ifname).await?;
        }
        self.set(
            LinkUnspec::new_with_index(index).up().build(),
            "bring up",
            &spec.ifname,
        )
        .await?;
        if let Some(lo) = self.index("lo").await? {
            self.set(
                LinkUnspec::new_with_index(lo).up().build(),
                "bring up",
                "lo",
            )
            .await?;
        }
        for gateway in &spec.gateways {
            self.add_default_route(index, *gateway).await?;
        }
        Ok(())
    }

    async fn add_default_route(&self, index: u32, gateway: IpAddr) -> Result<()> {
        let msg = match gateway {
            IpAddr::V4(gw) => RouteMessageBuilder::<std::net::Ipv4Addr>::new()
                .output_interface(index)
                .gateway(gw)
                .build(),
            IpAddr::V6(gw) => RouteMessageBuilder::<std::net::Ipv6Addr>::new()
                .output_interface(index)
                .gateway(gw)
                .build(),
        };
        match self.handle.route().add(msg).execute().await {
            Err(e) if !is_errno(&e, libc::EEXIST) => {
                Err(request(format!("add default route via {gateway}"), e))
            }
            _ => Ok(()),
        }
    }

    async fn routes(&self, filter: RouteMessage) -> Result<Vec<IpNet>> {
        let mut stream = self.handle.route().get(filter).execute();
        let mut out = Vec::new();
        while let Some(msg) = stream
            .try_next()
            .await
            .map_err(|e| request("list routes".into(), e))?
        {
            if let Some(net) = destination(&msg) {
                out.push(net);
            }
        }
        Ok(out)
    }

    async fn link_names(&self) -> Result<Vec<String>> {
        let mut stream = self.handle.link().get().execute();
        let mut out = Vec::new();
        while let Some(msg) = stream
            .try_next()
            .await
            .map_err(|e| request("list links".into(), e))?
        {
            out.extend(msg.attributes.iter().find_map(|a| match a {
                LinkAttribute::IfName(n) => Some(n.clone()),
                _ => None,
            }));
        }
        Ok(out)
    }
}

/// The destination prefix of a route (default routes have prefix 0).
fn destination(msg: &RouteMessage) -> Option<IpNet> {
    let len = msg.header.destination_prefix_length;
    let addr = msg.attributes.iter().find_map(|a| match a {
        RouteAttribute::Destination(RouteAddress::Inet(v4)) => Some(IpAddr::V4(*v4)),
        RouteAttribute::Destination(RouteAddress::Inet6(v6)) => Some(IpAddr::V6(*v6)),
        _ => None,
    });
    match addr {
        Some(addr) => IpNet::new(addr, len).ok().map(|n| n.trunc()),
        None if len == 0 => None,
        None => None,
    }
}

/// True when a link message describes a bridge.
pub fn is_bridge(msg: &LinkMessage) -> bool {
    msg.attributes.iter().any(|a| match a {
        LinkAttribute::LinkInfo(infos) => infos
            .iter()
            .any(|i| matches!(i, LinkInfo::Kind(InfoKind::Bridge))),
        _ => false,
    })
}

fn is_errno(e: &rtnetlink::Error, errno: i32) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m) if m.code.map(|c| c.get().abs()) == Some(errno))
}

fn request(what: String, source: rtnetlink::Error) -> NetlinkError {
    NetlinkError::Request { what, source }
}

/// Runs `f` on a short-lived thread that joined the namespace of `netns`.
fn in_netns_thread<T: Send + 'static>(
    netns: &File,
    path: &Path,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let fd = netns
        .try_clone()
        .map_err(|e| NetlinkError::Netns(path.into(), e))?;
    let joined = path.to_path_buf();
    std::thread::spawn(move || {
        setns(fd.as_fd(), CloneFlags::CLONE_NEWNET)
            .map_err(|e| NetlinkError::Netns(joined, e.into()))?;
        f()
    })
    .join()
    .map_err(|_| NetlinkError::Netns(path.into(), std::io::Error::other("thread panicked")))?
}

/// Writes `/proc/sys/<key>` for the calling thread's network namespace.
fn write_sysctl(key: &str, value: &str) -> Result<()> {
    let path = Path::new("/proc/sys").join(key);
    if std::fs::read_to_string(&path).is_ok_and(|v| v.trim() == value) {
        return Ok(());
    }
    std::fs::write(&path, value).map_err(|e| NetlinkError::Sysctl(key.replace('/', "."), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(dest: Option<&str>, len: u8) -> RouteMessage {
        let mut msg = RouteMessage::default();
        msg.header.destination_prefix_length = len;
        if let Some(dest) = dest {
            let addr = RouteAddress::Inet(dest.parse().unwrap());
            msg.attributes.push(RouteAttribute::Destination(addr));
        }
        msg
    }

    #[test]
    fn a_route_destination_is_its_prefix_and_a_default_route_has_none() {
        let net = destination(&route(Some("172.18.0.0"), 16));
        assert_eq!(net, Some("172.18.0.0/16".parse().unwrap()));
        assert_eq!(destination(&route(None, 0)), None);
    }
}
