//! The transport on loopback: delivery, lanes, bad peers, reconnects.

use std::net::SocketAddr;
use std::time::Duration;

use edgeshift_net::{AddressBook, Inbox, LinkEmulation, Transport};
use edgeshift_proto::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const ANY: &str = "127.0.0.1:0";

fn any() -> SocketAddr {
    ANY.parse().expect("literal address")
}

async fn node(id: NodeId, book: AddressBook) -> (Transport, Inbox) {
    Transport::bind(any(), [id], book, LinkEmulation::default())
        .await
        .expect("binds")
}

fn input(seq: u64) -> Message {
    ServiceInput {
        ue: UeId(1),
        service: ServiceId(1),
        via: CellId(1),
        answered_below: 0,
        input: InputRecord {
            seq,
            payload: vec![seq as u8; 100],
        },
    }
    .into()
}

async fn recv(inbox: &mut Inbox) -> Incoming {
    tokio::time::timeout(Duration::from_secs(10), inbox.recv())
        .await
        .expect("a message within 10 s")
        .expect("inbox open")
}

use edgeshift_net::Incoming;

#[tokio::test]
async fn messages_arrive_in_order_with_their_sender() {
    let b = NodeId::Server(ServerId(2));
    let a = NodeId::Cell(CellId(1));
    let (tb, mut ib) = node(b, AddressBook::new()).await;
    let (ta, _ia) = node(a, [(b, tb.local_addr())].into()).await;
    for seq in 1..=50 {
        ta.send(a, b, input(seq)).expect("queued");
    }
    for seq in 1..=50 {
        let m = recv(&mut ib).await;
        assert_eq!((m.from, m.to), (a, b));
        assert!(matches!(m.msg, Message::ServiceInput(ref i) if i.input.seq == seq));
    }
    assert!(matches!(
        ta.send(a, NodeId::CONTROL, input(1)),
        Err(edgeshift_net::NetError::UnknownPeer(NodeId::CONTROL))
    ));
}

#[tokio::test]
async fn garbage_and_truncated_peers_are_dropped_and_the_listener_keeps_serving() {
    let b = NodeId::CONTROL;
    let a = NodeId::Server(ServerId(1));
    let (tb, mut ib) = node(b, AddressBook::new()).await;

    let mut junk = TcpStream::connect(tb.local_addr()).await.expect("connects");
    junk.write_all(b"GET / HTTP/1.1\r\n\r\n")
        .await
        .expect("writes");
    // A valid Hello, then half a frame, then hang up.
    let mut half = TcpStream::connect(tb.local_addr()).await.expect("connects");
    let hello = codec::encode(
        &Hello {
            from: a,
            to: b,
            lane: Lane::Control,
        }
        .into(),
    )
    .expect("encodes");
    let frame = codec::encode(&input(7)).expect("encodes");
    half.write_all(&hello).await.expect("writes");
    half.write_all(&frame[..frame.len() / 2])
        .await
        .expect("writes");
    drop(half);
    // A Hello for a node that does not live here.
    let mut lost = TcpStream::connect(tb.local_addr()).await.expect("connects");
    let wrong = codec::encode(
        &Hello {
            from: a,
            to: NodeId::Ue(UeId(9)),
            lane: Lane::Control,
        }
        .into(),
    )
    .expect("encodes");
    lost.write_all(&wrong).await.expect("writes");

    let (ta, _ia) = node(a, [(b, tb.local_addr())].into()).await;
    ta.send(a, b, input(1)).expect("queued");
    let m = recv(&mut ib).await;
    assert!(matches!(m.msg, Message::ServiceInput(ref i) if i.input.seq == 1));
    for _ in 0..100 {
        if tb.stats().peer_errors == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(tb.stats().peer_errors, 3, "{:?}", tb.stats());
    drop(junk);
    drop(lost);
}

#[tokio::test]
async fn a_restarted_peer_gets_the_messages_queued_while_it_was_away() {
    let b = NodeId::CONTROL;
    let a = NodeId::Server(ServerId(1));
    let (tb, ib) = node(b, AddressBook::new()).await;
    let addr = tb.local_addr();
    let (ta, _ia) = node(a, [(b, addr)].into()).await;
    tb.shutdown(Duration::from_millis(100)).await;
    drop(ib);
    drop(tb);
    tokio::time::sleep(Duration::from_millis(50)).await;
    for seq in 1..=3 {
        ta.send(a, b, input(seq)).expect("queued");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (tb, mut ib) = Transport::bind(addr, [b], AddressBook::new(), LinkEmulation::default())
        .await
        .expect("rebinds the same port");
    for seq in 1..=3 {
        let m = recv(&mut ib).await;
        assert!(matches!(m.msg, Message::ServiceInput(ref i) if i.input.seq == seq));
    }
    drop(tb);
}

#[tokio::test]
async fn bulk_state_does_not_delay_control_messages() {
    let b = NodeId::Server(ServerId(2));
    let a = NodeId::Server(ServerId(1));
    let (tb, mut ib) = node(b, AddressBook::new()).await;
    let emu = LinkEmulation {
        gbit: 0.1,
        ..LinkEmulation::default()
    };
    let (ta, _ia) = Transport::bind(any(), [a], [(b, tb.local_addr())].into(), emu)
        .await
        .expect("binds");
    // 4 MiB of bulk at 100 Mbit/s keeps the bulk lane busy for over 300 ms.
    for seq in 0..4 {
        let chunk = ShadowTransfer {
            service: ServiceId(1),
            ue: UeId(1),
            source: ServerId(1),
            transfer: 1,
            seq: 0,
            digest: 0,
            spec: None,
            total_len: 4 << 20,
            offset: seq << 20,
            data: vec![1; 1 << 20].into(),
            state_checksum: None,
            answers: Vec::new(),
        };
        ta.send(a, b, chunk.into()).expect("queued");
    }
    ta.send(a, b, input(1)).expect("queued");
    let first = recv(&mut ib).await;
    assert!(
        matches!(first.msg, Message::ServiceInput(_)),
        "{}",
        first.msg.name()
    );
}

#[tokio::test]
async fn shutdown_stops_listening() {
    let (tb, _ib) = node(NodeId::CONTROL, AddressBook::new()).await;
    let addr = tb.local_addr();
    tb.shutdown(Duration::from_millis(100)).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let c = TcpStream::connect(addr).await;
    assert!(c.is_err(), "still listening");
}

#[tokio::test]
async fn an_absent_peer_costs_bounded_memory_and_a_clear_error() {
    let a = NodeId::Server(ServerId(1));
    let b = NodeId::CONTROL;
    // Nobody listens at b's address.
    let addr = {
        let l = std::net::TcpListener::bind(any()).expect("binds");
        l.local_addr().expect("addr")
    };
    let (ta, _ia) = node(a, [(b, addr)].into()).await;
    ta.set_backlog_limit(10_000);
    let mut sent = 0;
    let err = loop {
        match ta.send(a, b, input(sent)) {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
        assert!(sent < 1000, "the backlog limit never bit");
    };
    assert!(
        matches!(err, edgeshift_net::NetError::Backlog { to, .. } if to == b),
        "{err}"
    );
    assert!(sent >= 50, "{sent} messages queued before the limit");
}

/// A frame header announcing `len` payload bytes of a 3010.
fn header(len: u32) -> Vec<u8> {
    let mut h = codec::MAGIC.to_vec();
    h.extend_from_slice(&[codec::VERSION, 0]);
    h.extend_from_slice(&3010u16.to_be_bytes());
    h.extend_from_slice(&len.to_be_bytes());
    h
}

#[tokio::test]
async fn a_big_frame_before_the_hello_is_refused_at_once_and_one_after_it_costs_what_arrives() {
    use tokio::io::AsyncReadExt;
    let b = NodeId::CONTROL;
    let a = NodeId::Server(ServerId(1));
    let (tb, mut ib) = node(b, AddressBook::new()).await;
    // Before any Hello: 64 MiB announced. The daemon hangs up without reading on.
    let mut early = TcpStream::connect(tb.local_addr()).await.expect("connects");
    early
        .write_all(&header(codec::MAX_PAYLOAD as u32))
        .await
        .expect("writes");
    let mut byte = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(10), early.read(&mut byte))
        .await
        .expect("closed within 10 s");
    assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
    // After a Hello: 64 MiB announced, 1 KiB sent, then silence. The connection stays (it
    // may be a slow link), and the listener serves everyone else meanwhile.
    let mut slow = TcpStream::connect(tb.local_addr()).await.expect("connects");
    let hello = codec::encode(
        &Hello {
            from: a,
            to: b,
            lane: Lane::Bulk,
        }
        .into(),
    )
    .expect("encodes");
    slow.write_all(&hello).await.expect("writes");
    slow.write_all(&header(codec::MAX_PAYLOAD as u32))
        .await
        .expect("writes");
    slow.write_all(&[0u8; 1024]).await.expect("writes");
    let (ta, _ia) = node(a, [(b, tb.local_addr())].into()).await;
    ta.send(a, b, input(1)).expect("queued");
    let m = recv(&mut ib).await;
    assert!(matches!(m.msg, Message::ServiceInput(ref i) if i.input.seq == 1));
    assert_eq!(tb.stats().peer_errors, 1, "{:?}", tb.stats());
    drop(slow);
}

#[tokio::test]
async fn a_slow_receiver_holds_at_most_its_inbox_and_loses_nothing() {
    use edgeshift_net::INBOX_CAPACITY;
    let b = NodeId::Server(ServerId(2));
    let a = NodeId::Cell(CellId(1));
    let (tb, mut ib) = node(b, AddressBook::new()).await;
    let (ta, _ia) = node(a, [(b, tb.local_addr())].into()).await;
    let n = (INBOX_CAPACITY * 4) as u64;
    for seq in 1..=n {
        ta.send(a, b, input(seq)).expect("queued");
    }
    // Nobody reads for a while: the inbox fills, then the connection stops reading.
    let mut full = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if ib.len() == INBOX_CAPACITY {
            full = true;
            break;
        }
    }
    assert!(full, "the inbox filled up ({} held)", ib.len());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(ib.len(), INBOX_CAPACITY, "and holds no more");
    // Reading again brings every message, in order.
    for seq in 1..=n {
        let m = recv(&mut ib).await;
        assert!(matches!(m.msg, Message::ServiceInput(ref i) if i.input.seq == seq));
    }
}
