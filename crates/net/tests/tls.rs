//! Mutual TLS: identities come from certificates. A peer is heard only as the node its
//! certificate names; plaintext peers and peers of another CA do not get in.

use std::net::SocketAddr;
use std::time::Duration;

use edgeshift_net::pki::Ca;
use edgeshift_net::{AddressBook, Inbox, LinkEmulation, Tls, Transport};
use edgeshift_proto::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

fn any() -> SocketAddr {
    "127.0.0.1:0".parse().expect("literal address")
}

fn tls(ca: &Ca, daemon: &str, nodes: &[NodeId]) -> Tls {
    let issued = ca.issue(daemon, nodes).expect("issued");
    Tls::from_pem(
        ca.cert_pem().as_bytes(),
        issued.cert_pem.as_bytes(),
        issued.key_pem.as_bytes(),
    )
    .expect("TLS config")
}

async fn node(id: NodeId, book: AddressBook, tls: Tls) -> (Transport, Inbox) {
    Transport::bind_tls(any(), [id], book, LinkEmulation::default(), Some(tls))
        .await
        .expect("binds")
}

fn probe(nonce: u64) -> Message {
    Probe {
        ue: UeId(1),
        service: ServiceId(1),
        via: CellId(1),
        nonce,
        checksum: false,
    }
    .into()
}

async fn errors_reach(t: &Transport, n: u64) {
    for _ in 0..250 {
        if t.stats().peer_errors >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_peer_is_heard_only_as_the_node_its_certificate_names() {
    let ca = Ca::new("test CA").expect("CA");
    let control = NodeId::CONTROL;
    let me1 = NodeId::Server(ServerId(1));
    let me2 = NodeId::Server(ServerId(2));
    let (tc, mut ic) = node(control, AddressBook::new(), tls(&ca, "control", &[control])).await;
    let book: AddressBook = [(control, tc.local_addr())].into();
    let (t1, _i1) = node(me1, book.clone(), tls(&ca, "me1", &[me1])).await;
    t1.send(me1, control, probe(1)).expect("queued");
    let m = tokio::time::timeout(Duration::from_secs(10), ic.recv())
        .await
        .expect("delivered")
        .expect("open");
    assert_eq!(m.from, me1);
    assert!(matches!(m.msg, Message::Probe(ref p) if p.nonce == 1));

    // me2's certificate, claiming to be me1: refused after the handshake.
    let (t2, _i2) = node(me2, book, tls(&ca, "me2", &[me2])).await;
    t2.send(me1, control, probe(2)).expect("queued");
    // A plaintext peer and a peer of another CA: refused in the handshake.
    let mut plain = TcpStream::connect(tc.local_addr()).await.expect("connects");
    let hello = codec::encode(
        &Hello {
            from: me1,
            to: control,
            lane: Lane::Control,
        }
        .into(),
    )
    .expect("encodes");
    let _ = plain.write_all(&hello).await;
    let other = Ca::new("someone else").expect("CA");
    let (t3, _i3) = node(
        me1,
        [(control, tc.local_addr())].into(),
        tls(&other, "me1", &[me1]),
    )
    .await;
    t3.send(me1, control, probe(3)).expect("queued");
    errors_reach(&tc, 3).await;
    assert!(tc.stats().peer_errors >= 3, "{:?}", tc.stats());
    // Nothing of theirs arrived.
    let late = tokio::time::timeout(Duration::from_millis(300), ic.recv()).await;
    assert!(late.is_err(), "a forged message got through: {late:?}");
    drop(plain);
}
