//! Leadership and the fenced registry against a real etcd (Debian's `etcd-server`).

use std::sync::Arc;
use std::time::Duration;

use edgeshift_etcd::local::etcd_binary;
use edgeshift_etcd::{Client, LocalEtcd};
use edgeshift_live::replica::leader::{Deposed, Elector};
use edgeshift_live::replica::registry::{EtcdRegistry, RegistryError};
use tokio::sync::watch;
use tokio::time::Instant;

async fn etcd(n: usize) -> Option<(LocalEtcd, tempfile::TempDir)> {
    if etcd_binary().is_none() {
        eprintln!("SKIPPED: no etcd binary (apt-get install etcd-server)");
        return None;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let e = LocalEtcd::start(dir.path(), n).await.expect("local etcd");
    Some((e, dir))
}

fn elector(c: &Arc<Client>, me: &str) -> Elector {
    Elector::new(
        c.clone(),
        "/edgeshift/test",
        me.into(),
        Duration::from_secs(2),
    )
}

#[tokio::test]
async fn one_leader_and_a_standby_that_takes_over_within_two_leases() {
    let Some((cluster, _dir)) = etcd(1).await else {
        return;
    };
    let c = Arc::new(Client::new(&cluster.endpoints()).expect("client"));
    let (a, b) = (elector(&c, "a"), elector(&c, "b"));
    let (_tx, mut stop) = watch::channel(false);
    let first = a.campaign(&mut stop.clone()).await.expect("a leads");
    assert_eq!(b.try_lead().await.expect("etcd"), None, "two leaders");
    assert_eq!(
        b.leader().await.expect("etcd"),
        Some(("a".into(), first.revision))
    );
    // The leader dies without a word (its keep-alives stop): b leads within two leases,
    // with a higher term.
    let died = Instant::now();
    let second = b.campaign(&mut stop).await.expect("b leads");
    let took = died.elapsed();
    assert!(second.revision > first.revision);
    assert!(took < Duration::from_secs(4), "took {took:?}");
    // The old leader's registry writes are refused from now on.
    let (mut old, _) = EtcdRegistry::open(c.clone(), "/edgeshift/test", a.key(), first.revision)
        .await
        .expect("open");
    assert!(matches!(
        old.write(b"stale").await,
        Err(RegistryError::Deposed(_))
    ));
    let (mut new, _) = EtcdRegistry::open(c.clone(), "/edgeshift/test", b.key(), second.revision)
        .await
        .expect("open");
    new.write(b"fresh").await.expect("the leader writes");
}

#[tokio::test]
async fn a_leader_cut_off_from_etcd_steps_down_before_a_standby_can_lead() {
    let Some((mut cluster, _dir)) = etcd(3).await else {
        return;
    };
    let endpoints = cluster.endpoints();
    // The leader talks only to member 1; the standby to the two others.
    let lone = Arc::new(Client::new(&endpoints[..1]).expect("client"));
    let rest = Arc::new(Client::new(&endpoints[1..]).expect("client"));
    let (a, b) = (elector(&lone, "a"), elector(&rest, "b"));
    let (_tx, stop) = watch::channel(false);
    let mut term = a.campaign(&mut stop.clone()).await.expect("a leads");
    let holder = tokio::spawn(async move {
        let mut stop = stop.clone();
        let why = a.hold(&mut term, &mut stop).await;
        (why, Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    // Member 1 dies: the leader hears nothing more.
    cluster.kill(0);
    let (_tx2, mut stop2) = watch::channel(false);
    let won = b.campaign(&mut stop2).await.expect("b leads");
    let won_at = Instant::now();
    let (why, stepped_down) = holder.await.expect("holder");
    assert!(matches!(why, Deposed::Silent), "{why}");
    assert!(
        stepped_down < won_at,
        "the old leader acted until {stepped_down:?}, the new one from {won_at:?}"
    );
    assert!(won.revision > 0);
}
