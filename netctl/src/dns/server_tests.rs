//! Server tests: a real server on 127.0.0.1:0 answering real DNS messages
//! over UDP and TCP; upstreams are fakes on loopback. Nothing leaves
//! 127.0.0.0/8 and no real name is ever resolved.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::*;
use crate::dns::table::{DnsNetwork, DnsTable};
use crate::dns::table_file::save_table;

const CLIENT_WAIT: Duration = Duration::from_secs(5);

use crate::dns::table::test_support::{endpoint, ip};

/// The test client is the container at 127.0.0.1 on `front`, next to two
/// `web` replicas; `db` lives on `back`, out of its sight.
fn table() -> DnsTable {
    let mut table = DnsTable::default();
    for name in ["front", "back"] {
        table
            .networks
            .insert(name.to_owned(), DnsNetwork::default());
    }
    table.endpoints = vec![
        endpoint("front", "client-1", &["client"], &["127.0.0.1"]),
        endpoint("front", "shop-web-1", &["web"], &["10.0.0.2", "fd00::2"]),
        endpoint("front", "shop-web-2", &["web"], &["10.0.0.3"]),
        endpoint("back", "shop-db-1", &["db"], &["10.1.0.2"]),
    ];
    table
}

/// A running server and what it takes to talk to it and stop it.
struct Running {
    udp: SocketAddr,
    tcp: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), ServerError>>,
    _dir: tempfile::TempDir,
    table_path: PathBuf,
}

impl Running {
    async fn stop(self) {
        self.stop.send(()).unwrap();
        self.task.await.unwrap().unwrap();
    }
}

async fn start(table: &DnsTable, upstreams: Vec<SocketAddr>) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let table_path = dir.path().join("dns.json");
    save_table(&table_path, table).unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (udp_addr, tcp_addr) = (udp.local_addr().unwrap(), tcp.local_addr().unwrap());
    let listeners = Listeners {
        udp: vec![udp],
        tcp: vec![tcp],
    };
    let mut options = ServerOptions::new(table_path.clone(), upstreams);
    options.forward_timeout = Duration::from_millis(300);
    let (stop, stopped) = oneshot::channel();
    let shutdown = async move {
        let _ = stopped.await;
    };
    let task = tokio::spawn(run(listeners, options, shutdown));
    Running {
        udp: udp_addr,
        tcp: tcp_addr,
        stop,
        task,
        _dir: dir,
        table_path,
    }
}

fn query_bytes(name: &str, kind: RecordType) -> Vec<u8> {
    query_message(name, kind).to_vec().unwrap()
}

fn query_message(name: &str, kind: RecordType) -> Message {
    let mut message = Message::query();
    message.metadata.id = 0x5eed;
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(Name::from_ascii(name).unwrap(), kind));
    message
}

async fn ask_udp_from(local: &str, server: SocketAddr, name: &str, kind: RecordType) -> Message {
    exchange_udp(local, server, &query_bytes(name, kind)).await
}

async fn exchange_udp(local: &str, server: SocketAddr, query: &[u8]) -> Message {
    let socket = UdpSocket::bind(local).await.unwrap();
    socket.send_to(query, server).await.unwrap();
    let mut buffer = vec![0; usize::from(u16::MAX)];
    let len = tokio::time::timeout(CLIENT_WAIT, socket.recv(&mut buffer))
        .await
        .expect("no answer over udp")
        .unwrap();
    Message::from_vec(&buffer[..len]).unwrap()
}

async fn ask_udp(server: SocketAddr, name: &str, kind: RecordType) -> Message {
    ask_udp_from("127.0.0.1:0", server, name, kind).await
}

async fn ask_tcp(server: SocketAddr, name: &str, kind: RecordType) -> Message {
    let mut stream = TcpStream::connect(server).await.unwrap();
    let query = query_bytes(name, kind);
    let len = u16::try_from(query.len()).unwrap();
    stream.write_all(&len.to_be_bytes()).await.unwrap();
    stream.write_all(&query).await.unwrap();
    let read = async {
        let len = stream.read_u16().await.unwrap();
        let mut buffer = vec![0; usize::from(len)];
        stream.read_exact(&mut buffer).await.unwrap();
        buffer
    };
    let buffer = tokio::time::timeout(CLIENT_WAIT, read)
        .await
        .expect("no answer over tcp");
    Message::from_vec(&buffer).unwrap()
}

fn addresses(message: &Message) -> Vec<IpAddr> {
    let mut found: Vec<IpAddr> = message
        .answers
        .iter()
        .filter_map(|record| match &record.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
            _ => None,
        })
        .collect();
    found.sort();
    found
}

#[tokio::test]
async fn udp_query_for_a_service_returns_every_replica_authoritatively() {
    let server = start(&table(), Vec::new()).await;
    let answer = ask_udp(server.udp, "web.", RecordType::A).await;
    assert_eq!(answer.metadata.id, 0x5eed);
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
    assert!(answer.metadata.authoritative);
    assert_eq!(addresses(&answer), vec![ip("10.0.0.2"), ip("10.0.0.3")]);
    assert!(answer.answers.iter().all(|record| record.ttl == RECORD_TTL));
    server.stop().await;
}

#[tokio::test]
async fn tcp_query_gets_the_same_answer_as_udp() {
    let server = start(&table(), Vec::new()).await;
    let answer = ask_tcp(server.tcp, "shop-web-1.front.", RecordType::A).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
    assert_eq!(addresses(&answer), vec![ip("10.0.0.2")]);
    server.stop().await;
}

#[tokio::test]
async fn successive_queries_rotate_the_replicas() {
    let server = start(&table(), Vec::new()).await;
    let first = ask_udp(server.udp, "web.", RecordType::A).await;
    let second = ask_udp(server.udp, "web.", RecordType::A).await;
    assert_ne!(first.answers[0].data, second.answers[0].data);
    server.stop().await;
}

#[tokio::test]
async fn aaaa_for_a_v4_only_name_is_an_empty_authoritative_answer() {
    let server = start(&table(), Vec::new()).await;
    let answer = ask_udp(server.udp, "client.", RecordType::AAAA).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
    assert!(answer.metadata.authoritative);
    assert!(answer.answers.is_empty());
    let answer = ask_udp(server.udp, "web.", RecordType::AAAA).await;
    assert_eq!(addresses(&answer), vec![ip("fd00::2")]);
    server.stop().await;
}

#[tokio::test]
async fn a_large_answer_is_truncated_without_edns_and_whole_with_it() {
    let mut table = table();
    for n in 0..60 {
        let address = format!("10.2.0.{n}");
        let container = format!("shop-big-{n}");
        table
            .endpoints
            .push(endpoint("front", &container, &["big"], &[&address]));
    }
    let server = start(&table, Vec::new()).await;
    let plain = ask_udp(server.udp, "big.", RecordType::A).await;
    assert!(plain.metadata.truncation);
    assert!(plain.answers.len() < 60);
    let mut query = query_message("big.", RecordType::A);
    let mut edns = Edns::new();
    edns.set_max_payload(4096);
    query.set_edns(edns);
    let query = query.to_vec().unwrap();
    let answer = exchange_udp("127.0.0.1:0", server.udp, &query).await;
    assert!(!answer.metadata.truncation);
    assert_eq!(answer.answers.len(), 60);
    assert!(answer.edns.is_some());
    server.stop().await;
}

#[tokio::test]
async fn ptr_query_names_the_container_on_its_network() {
    let server = start(&table(), Vec::new()).await;
    let answer = ask_udp(server.udp, "3.0.0.10.in-addr.arpa.", RecordType::PTR).await;
    let expected = RData::PTR(PTR(Name::from_ascii("shop-web-2.front.").unwrap()));
    assert_eq!(answer.answers.len(), 1);
    assert_eq!(answer.answers[0].data, expected);
    server.stop().await;
}

#[tokio::test]
async fn a_query_from_an_unknown_address_is_refused() {
    let server = start(&table(), Vec::new()).await;
    let answer = ask_udp_from("127.0.0.2:0", server.udp, "web.", RecordType::A).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::Refused);
    assert!(answer.answers.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn an_unknown_name_on_internal_networks_only_is_nxdomain() {
    let mut table = table();
    table.networks.get_mut("front").unwrap().internal = true;
    let server = start(&table, Vec::new()).await;
    let answer = ask_udp(server.udp, "db.", RecordType::A).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::NXDomain);
    assert!(answer.metadata.authoritative);
    server.stop().await;
}

#[tokio::test]
async fn a_name_not_ours_with_no_upstream_is_servfail() {
    let server = start(&table(), Vec::new()).await;
    let answer = ask_udp(server.udp, "db.", RecordType::A).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::ServFail);
    server.stop().await;
}

/// A fake upstream on loopback answering every query with `answer` for A.
async fn fake_upstream(answer: &str) -> (SocketAddr, JoinHandle<Vec<Name>>) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let answer: std::net::Ipv4Addr = answer.parse().unwrap();
    let task = tokio::spawn(async move {
        let mut buffer = vec![0; 4096];
        let (len, from) = socket.recv_from(&mut buffer).await.unwrap();
        let query = Message::from_vec(&buffer[..len]).unwrap();
        let name = query.queries[0].name().clone();
        let mut reply = Message::response(query.metadata.id, OpCode::Query);
        reply.metadata.recursion_available = true;
        reply.add_query(query.queries[0].clone());
        reply.add_answer(Record::from_rdata(name.clone(), 42, RData::A(A(answer))));
        socket
            .send_to(&reply.to_vec().unwrap(), from)
            .await
            .unwrap();
        vec![name]
    });
    (addr, task)
}

#[tokio::test]
async fn a_name_not_ours_is_relayed_to_the_upstream_and_its_answer_returned() {
    let (upstream, asked) = fake_upstream("192.0.2.7").await;
    let server = start(&table(), vec![upstream]).await;
    let answer = ask_udp(server.udp, "outside.test.", RecordType::A).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
    assert_eq!(answer.metadata.message_type, MessageType::Response);
    assert!(!answer.metadata.authoritative);
    assert_eq!(addresses(&answer), vec![ip("192.0.2.7")]);
    assert_eq!(answer.answers[0].ttl, 42);
    let asked = asked.await.unwrap();
    assert_eq!(asked, vec![Name::from_ascii("outside.test.").unwrap()]);
    server.stop().await;
}

#[tokio::test]
async fn a_silent_upstream_is_skipped_for_the_next_one() {
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (upstream, _asked) = fake_upstream("192.0.2.8").await;
    let server = start(&table(), vec![silent.local_addr().unwrap(), upstream]).await;
    let answer = ask_tcp(server.tcp, "outside.test.", RecordType::A).await;
    assert_eq!(addresses(&answer), vec![ip("192.0.2.8")]);
    server.stop().await;
}

#[tokio::test]
async fn only_silent_upstreams_mean_servfail() {
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let server = start(&table(), vec![silent.local_addr().unwrap()]).await;
    let answer = ask_udp(server.udp, "outside.test.", RecordType::A).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::ServFail);
    server.stop().await;
}

#[tokio::test]
async fn a_rewritten_table_file_is_picked_up_without_restart() {
    let server = start(&table(), Vec::new()).await;
    let before = ask_udp(server.udp, "cache.", RecordType::A).await;
    assert_eq!(before.metadata.response_code, ResponseCode::ServFail);
    let mut grown = table();
    grown
        .endpoints
        .push(endpoint("front", "shop-cache-1", &["cache"], &["10.0.0.9"]));
    save_table(&server.table_path, &grown).unwrap();
    let after = ask_udp(server.udp, "cache.", RecordType::A).await;
    assert_eq!(addresses(&after), vec![ip("10.0.0.9")]);
    server.stop().await;
}

#[tokio::test]
async fn run_returns_once_shutdown_resolves() {
    let server = start(&table(), Vec::new()).await;
    let udp = server.udp;
    server.stop().await;
    // The port is free again once the server has stopped.
    UdpSocket::bind(udp).await.unwrap();
}
