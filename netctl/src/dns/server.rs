//! The embedded DNS server: answers [`DnsTable`] lookups over UDP and TCP
//! on sockets handed in by the caller, and relays everything else to
//! upstream resolvers over UDP.
//!
//! Invariants:
//! - all policy (who may resolve what, NXDOMAIN vs forward) lives in the
//!   table; this module only translates between DNS messages and lookups;
//! - our own answers are authoritative and carry a TTL of
//!   [`RECORD_TTL`]; relayed answers are passed on as the upstream sent them;
//! - a query that no upstream answers, or that has no upstream to go to,
//!   gets SERVFAIL rather than silence, so clients fail fast;
//! - the table is re-read when its file is replaced, so attaching a
//!   container never needs a server restart.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hickory_proto::op::{
    Edns, Header, HeaderCounts, Message, MessageType, Metadata, OpCode, Query, ResponseCode,
};
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_server::Server;
use hickory_server::net::NetError;
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use thiserror::Error;
use tokio::net::{TcpListener, UdpSocket};
use tracing::{debug, warn};

use super::table::{DnsTable, Lookup, RecordKind, Upstreams};
use super::table_file::TableFile;

/// TTL of the records we answer with (docker's embedded DNS uses the same).
pub const RECORD_TTL: u32 = 600;

/// How long to wait for one upstream before trying the next.
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(2);

/// A TCP client that sends nothing for this long is disconnected.
const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// Responses queued per TCP connection.
const TCP_RESPONSE_QUEUE: usize = 32;

/// Largest UDP DNS message an upstream may send back.
const MAX_UDP_MESSAGE: usize = 65_535;

/// Failures of the server as a whole (single queries never fail it).
#[derive(Debug, Error)]
pub enum ServerError {
    /// A UDP socket could not be bound.
    #[error("failed to bind dns udp socket {addr}")]
    BindUdp {
        /// The address asked for.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A TCP listener could not be bound.
    #[error("failed to bind dns tcp listener {addr}")]
    BindTcp {
        /// The address asked for.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A listener task stopped with an error.
    #[error("failed to serve dns")]
    Serve {
        /// The server's error.
        #[source]
        source: NetError,
    },
}

/// Where the server reads its table and where it forwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerOptions {
    /// The JSON table file, re-read when replaced.
    pub table_path: PathBuf,
    /// The host's resolvers, tried in order.
    pub upstreams: Vec<SocketAddr>,
    /// Wait per upstream.
    pub forward_timeout: Duration,
}

impl ServerOptions {
    /// Options with the default forward timeout.
    pub fn new(table_path: PathBuf, upstreams: Vec<SocketAddr>) -> ServerOptions {
        ServerOptions {
            table_path,
            upstreams,
            forward_timeout: FORWARD_TIMEOUT,
        }
    }
}

/// Bound sockets the server answers on.
#[derive(Debug, Default)]
pub struct Listeners {
    /// UDP sockets.
    pub udp: Vec<UdpSocket>,
    /// TCP listeners.
    pub tcp: Vec<TcpListener>,
}

impl Listeners {
    /// Binds UDP and TCP on each address.
    pub async fn bind(addrs: &[SocketAddr]) -> Result<Listeners, ServerError> {
        let mut listeners = Listeners::default();
        for &addr in addrs {
            let udp = UdpSocket::bind(addr)
                .await
                .map_err(|source| ServerError::BindUdp { addr, source })?;
            let tcp = TcpListener::bind(addr)
                .await
                .map_err(|source| ServerError::BindTcp { addr, source })?;
            listeners.udp.push(udp);
            listeners.tcp.push(tcp);
        }
        Ok(listeners)
    }
}

/// Serves on `listeners` until `shutdown` resolves (or a listener fails),
/// then stops gracefully.
pub async fn run(
    listeners: Listeners,
    options: ServerOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    let mut server = Server::new(DnsHandler::new(options));
    for socket in listeners.udp {
        server.register_socket(socket);
    }
    for listener in listeners.tcp {
        server.register_listener(listener, TCP_IDLE_TIMEOUT, TCP_RESPONSE_QUEUE);
    }
    tokio::select! {
        () = shutdown => {}
        finished = server.block_until_done() => {
            return finished.map_err(|source| ServerError::Serve { source });
        }
    }
    server
        .shutdown_gracefully()
        .await
        .map_err(|source| ServerError::Serve { source })
}

/// What we send back for one query.
enum Reply {
    /// Our own answer (authoritative), possibly empty.
    Records(ResponseCode, Vec<Record>),
    /// An upstream's answer, passed on.
    Relayed(Box<Message>),
    /// A non-authoritative error with no records.
    Error(ResponseCode),
}

/// Answers queries from the table file, forwarding the rest.
pub struct DnsHandler {
    table: Mutex<TableFile>,
    upstreams: Vec<SocketAddr>,
    forward_timeout: Duration,
    rotation: AtomicUsize,
}

impl DnsHandler {
    /// A handler reading the table at `options.table_path`.
    pub fn new(options: ServerOptions) -> DnsHandler {
        DnsHandler {
            table: Mutex::new(TableFile::new(options.table_path)),
            upstreams: options.upstreams,
            forward_timeout: options.forward_timeout,
            rotation: AtomicUsize::new(0),
        }
    }

    fn table(&self) -> Arc<DnsTable> {
        self.table
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .current()
    }

    async fn respond<R: ResponseHandler>(&self, request: &Request, response: R) -> ResponseInfo {
        let reply = self.reply(request).await;
        match send(request, reply, response).await {
            Ok(info) => info,
            Err(error) => {
                warn!(%error, src = %request.src(), "failed to send dns response");
                failed_info(request)
            }
        }
    }

    async fn reply(&self, request: &Request) -> Reply {
        if request.metadata.op_code != OpCode::Query {
            return Reply::Error(ResponseCode::NotImp);
        }
        let Ok(info) = request.request_info() else {
            return Reply::Error(ResponseCode::FormErr);
        };
        let query = info.query.original();
        let rotate = self.rotation.fetch_add(1, Ordering::Relaxed);
        let lookup = resolve(&self.table(), info.src.ip(), query, rotate);
        debug!(src = %info.src, name = %query.name(), kind = %query.query_type(), ?lookup, "dns query");
        match lookup {
            Lookup::Found(records) => Reply::Records(ResponseCode::NoError, records),
            Lookup::NxDomain => Reply::Records(ResponseCode::NXDomain, Vec::new()),
            Lookup::Refused => Reply::Error(ResponseCode::Refused),
            Lookup::Forward(upstreams) => self.forward(request, upstreams).await,
        }
    }

    async fn forward(&self, request: &Request, upstreams: Upstreams) -> Reply {
        let servers = match upstreams {
            Upstreams::Host => self.upstreams.clone(),
            Upstreams::Container(servers) => servers,
        };
        let id = request.metadata.id;
        for server in servers {
            let asked =
                tokio::time::timeout(self.forward_timeout, ask(request.as_slice(), id, server));
            match asked.await {
                Ok(Ok(answer)) if is_usable(&answer) => return Reply::Relayed(Box::new(answer)),
                Ok(Ok(answer)) => {
                    debug!(%server, code = %answer.metadata.response_code, "upstream failed")
                }
                Ok(Err(error)) => debug!(%server, %error, "upstream unreachable"),
                Err(_) => debug!(%server, "upstream timed out"),
            }
        }
        Reply::Error(ResponseCode::ServFail)
    }
}

// hickory-server declares the trait with `async_trait`.
#[async_trait::async_trait]
impl RequestHandler for DnsHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        response_handle: R,
    ) -> ResponseInfo {
        self.respond(request, response_handle).await
    }
}

/// The table's answer to `query`, as DNS records.
fn resolve(table: &DnsTable, requester: IpAddr, query: &Query, rotate: usize) -> Lookup<Record> {
    let name = query.name();
    if query.query_type() == RecordType::PTR
        && let Some(address) = arpa_address(name)
    {
        return table
            .lookup_ptr(requester, address)
            .map_found(|target| ptr_record(name, &target));
    }
    let kind = match query.query_type() {
        RecordType::A => RecordKind::A,
        RecordType::AAAA => RecordKind::Aaaa,
        _ => RecordKind::Other,
    };
    table
        .lookup(requester, &name.to_ascii(), kind, rotate)
        .map_found(|address| Some(address_record(name, address)))
}

/// The single address a `*.in-addr.arpa` / `*.ip6.arpa` name stands for.
fn arpa_address(name: &Name) -> Option<IpAddr> {
    let net = name.parse_arpa_name().ok()?;
    (net.prefix_len() == net.max_prefix_len()).then(|| net.addr())
}

fn address_record(name: &Name, address: IpAddr) -> Record {
    let data = match address {
        IpAddr::V4(v4) => RData::A(A(v4)),
        IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
    };
    Record::from_rdata(name.clone(), RECORD_TTL, data)
}

fn ptr_record(name: &Name, target: &str) -> Option<Record> {
    let target = Name::from_ascii(target).ok()?;
    Some(Record::from_rdata(
        name.clone(),
        RECORD_TTL,
        RData::PTR(PTR(target)),
    ))
}

/// Whether an upstream's answer ends the search (its failures do not).
fn is_usable(answer: &Message) -> bool {
    !matches!(
        answer.metadata.response_code,
        ResponseCode::ServFail | ResponseCode::Refused
    )
}

/// Sends the raw query to one upstream and waits for the response with the
/// same id; stray datagrams are ignored.
async fn ask(query: &[u8], id: u16, server: SocketAddr) -> io::Result<Message> {
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await?;
    // Connecting makes the kernel drop datagrams from anyone but `server`.
    socket.connect(server).await?;
    socket.send(query).await?;
    let mut buffer = vec![0; MAX_UDP_MESSAGE];
    loop {
        let len = socket.recv(&mut buffer).await?;
        let Ok(answer) = Message::from_vec(&buffer[..len]) else {
            continue;
        };
        if answer.metadata.id == id && answer.metadata.message_type == MessageType::Response {
            return Ok(answer);
        }
    }
}

/// Encodes `reply` for `request` and hands it to the transport.
async fn send<R: ResponseHandler>(
    request: &Request,
    reply: Reply,
    mut response: R,
) -> Result<ResponseInfo, NetError> {
    let edns = request
        .edns
        .as_ref()
        .map(|_| response_edns(request.max_payload()));
    let builder = MessageResponseBuilder::new(&request.queries, edns.as_ref());
    match reply {
        Reply::Records(code, records) => {
            let metadata = own_metadata(&request.metadata, code);
            let none: &[Record] = &[];
            let message = builder.build(metadata, &records, none, none, none);
            response.send_response(message).await
        }
        Reply::Relayed(answer) => {
            let mut metadata = answer.metadata;
            metadata.id = request.metadata.id;
            let none: &[Record] = &[];
            let message = builder.build(
                metadata,
                &answer.answers,
                &answer.authorities,
                none,
                &answer.additionals,
            );
            response.send_response(message).await
        }
        Reply::Error(code) => {
            let message = builder.error_msg(&request.metadata, code);
            response.send_response(message).await
        }
    }
}

/// Header of an answer we own: authoritative, and recursion is available
/// because we forward.
fn own_metadata(request: &Metadata, code: ResponseCode) -> Metadata {
    let mut metadata = Metadata::response_from_request(request);
    metadata.authoritative = true;
    metadata.recursion_available = true;
    metadata.response_code = code;
    metadata
}

/// Our EDNS record; its payload size is also the limit the encoder
/// truncates UDP answers to, so it echoes what the client can take.
fn response_edns(client_payload: u16) -> Edns {
    let mut edns = Edns::new();
    edns.set_max_payload(client_payload);
    edns
}

/// What to report when the response could not be sent.
fn failed_info(request: &Request) -> ResponseInfo {
    let mut metadata = Metadata::response_from_request(&request.metadata);
    metadata.response_code = ResponseCode::ServFail;
    ResponseInfo::from(Header {
        metadata,
        counts: HeaderCounts::default(),
    })
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
