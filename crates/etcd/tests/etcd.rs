//! The client against a real etcd (Debian's `etcd-server`), one member and three.

use std::time::Duration;

use edgeshift_etcd::local::{LocalError, etcd_binary};
use edgeshift_etcd::{Client, Compare, EtcdError, LocalEtcd, Op, Txn};

/// A local cluster of `n`, or `None` (with a note) where there is no etcd binary.
async fn cluster(n: usize) -> Option<(LocalEtcd, tempdir::Dir)> {
    if etcd_binary().is_none() {
        eprintln!("SKIPPED: no etcd binary (apt-get install etcd-server)");
        return None;
    }
    let dir = tempdir::Dir::new();
    match LocalEtcd::start(dir.path(), n).await {
        Ok(e) => Some((e, dir)),
        Err(LocalError::NoBinary) => None,
        Err(e) => panic!("local etcd: {e}"),
    }
}

mod tempdir {
    /// A directory removed at drop.
    pub(crate) struct Dir(std::path::PathBuf);
    impl Dir {
        pub(crate) fn new() -> Self {
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let p = std::env::temp_dir().join(format!("edgeshift-etcd-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).expect("temp dir");
            Self(p)
        }
        pub(crate) fn path(&self) -> &std::path::Path {
            &self.0
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[tokio::test]
async fn keys_transactions_and_leases_on_one_member() {
    let Some((etcd, _dir)) = cluster(1).await else {
        return;
    };
    let c = Client::new(&etcd.endpoints()).expect("client");
    assert_eq!(c.get(b"/k").await.expect("get"), None);
    let r1 = c.put(b"/k", b"v1", None).await.expect("put");
    let kv = c.get(b"/k").await.expect("get").expect("the key");
    assert_eq!((kv.value.as_slice(), kv.mod_revision), (&b"v1"[..], r1));

    // Compare-and-swap on the revision last seen: the second writer with that revision loses.
    let swap = |seen| Txn {
        compare: vec![Compare::modified(b"/k", seen)],
        success: vec![Op::put(b"/k", b"v2", None)],
        failure: vec![Op::get(b"/k")],
    };
    let first = c.txn(swap(r1)).await.expect("txn");
    assert!(first.succeeded);
    let second = c.txn(swap(r1)).await.expect("txn");
    assert!(!second.succeeded);
    assert_eq!(second.kvs[0].value, b"v2");

    // A key under a lease goes with it; creation is only for the first.
    let lease = c.grant(1).await.expect("grant");
    let take = |who: &[u8], lease| Txn {
        compare: vec![Compare::created(b"/leader", 0)],
        success: vec![Op::put(b"/leader", who, Some(lease))],
        failure: vec![Op::get(b"/leader")],
    };
    assert!(c.txn(take(b"a", lease.id)).await.expect("txn").succeeded);
    let other = c.grant(5).await.expect("grant");
    let lost = c.txn(take(b"b", other.id)).await.expect("txn");
    assert!(!lost.succeeded);
    assert_eq!(lost.kvs[0].value, b"a");
    assert!(c.keep_alive(lease.id).await.expect("keep-alive") >= 1);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(matches!(
        c.keep_alive(lease.id).await,
        Err(EtcdError::LeaseExpired(_))
    ));
    assert_eq!(c.get(b"/leader").await.expect("get"), None);
    assert!(c.txn(take(b"b", other.id)).await.expect("txn").succeeded);
    c.revoke(other.id).await.expect("revoke");
    assert_eq!(c.get(b"/leader").await.expect("get"), None);
}

#[tokio::test]
async fn a_three_member_cluster_outlives_a_member() {
    let Some((mut etcd, _dir)) = cluster(3).await else {
        return;
    };
    let c = Client::new(&etcd.endpoints()).expect("client");
    c.put(b"/k", b"before", None).await.expect("put");
    // The member the client talks to dies: the next one answers, with the data.
    etcd.kill(0);
    let mut got = None;
    for _ in 0..50 {
        match c.get(b"/k").await {
            Ok(v) => {
                got = v;
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert_eq!(got.map(|kv| kv.value), Some(b"before".to_vec()));
    c.put(b"/k", b"after", None)
        .await
        .expect("put with two of three");
}

#[test]
fn bad_endpoints_are_refused_with_the_reason() {
    assert!(matches!(Client::new(&[]), Err(EtcdError::Endpoint(..))));
    let e = Client::new(&["127.0.0.1:2379".into()]).expect_err("no scheme");
    assert!(e.to_string().contains("expected http://host:port"), "{e}");
}

/// A CA's files for a TLS cluster under `dir`, and clients: one with a certificate of
/// that CA, one with a certificate of another CA.
fn tls_setup(dir: &std::path::Path) -> (edgeshift_etcd::LocalTls, rustls::ClientConfig) {
    use edgeshift_net::{Tls, pki::Ca};
    use edgeshift_proto::NodeId;
    let client_of = |ca: &Ca| {
        let me = ca
            .issue("control", &[NodeId::CONTROL])
            .expect("client cert");
        Tls::from_pem(
            ca.cert_pem().as_bytes(),
            me.cert_pem.as_bytes(),
            me.key_pem.as_bytes(),
        )
        .expect("client tls")
        .client_config()
    };
    let ca = Ca::new("test CA").expect("ca");
    let server = ca
        .issue_host("etcd", &["127.0.0.1".into()])
        .expect("server cert");
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write");
        p
    };
    let tls = edgeshift_etcd::LocalTls {
        ca: write("ca.pem", &ca.cert_pem()),
        cert: write("etcd.pem", &server.cert_pem),
        key: write("etcd.key", &server.key_pem),
        client: client_of(&ca),
    };
    let stranger = client_of(&Ca::new("another CA").expect("ca"));
    (tls, stranger)
}

#[tokio::test]
async fn over_tls_only_clients_with_a_certificate_of_the_ca_get_in() {
    if etcd_binary().is_none() {
        eprintln!("SKIPPED: no etcd binary (apt-get install etcd-server)");
        return;
    }
    let dir = tempdir::Dir::new();
    let (tls, stranger) = tls_setup(dir.path());
    let etcd = LocalEtcd::start_tls(&dir.path().join("data"), 1, tls)
        .await
        .expect("local etcd over TLS");
    let endpoints = etcd.endpoints();
    assert!(endpoints[0].starts_with("https://"), "{endpoints:?}");
    let c = etcd.client().expect("client");
    c.put(b"/k", b"v", None).await.expect("put over TLS");
    let got = c.get(b"/k").await.expect("get").expect("the key");
    assert_eq!(got.value, b"v");
    // A certificate of another CA is refused; so is plaintext, and an http:// URL is not
    // taken for a TLS client.
    let other = Client::with_tls(&endpoints, stranger).expect("client");
    assert!(matches!(
        other.get(b"/k").await,
        Err(EtcdError::Unreachable { .. })
    ));
    let plain_url: Vec<String> = endpoints
        .iter()
        .map(|e| e.replacen("https://", "http://", 1))
        .collect();
    let plain = Client::new(&plain_url).expect("client");
    assert!(plain.get(b"/k").await.is_err());
    assert!(matches!(
        Client::with_tls(&plain_url, rustls_config()),
        Err(EtcdError::Endpoint(..))
    ));
}

fn rustls_config() -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth()
}
