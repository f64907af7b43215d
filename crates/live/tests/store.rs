//! An upgraded binary reads the control database an older one wrote.
//!
//! `data/control-v0.redb` was written by the control daemon of the release before
//! snapshots had a versioned schema (header-less postcard), killed with SIGKILL during
//! shadow sync of the `demo` deployment: one service, hosted on me1, with shadows planned.

use edgeshift_control::{ControlNode, Strategy};
use edgeshift_live::store::ControlStore;
use edgeshift_proto::{Instant, Role, ServerId, ServiceId, SyncMode};
use edgeshift_world::Scenario;

#[test]
fn a_database_written_before_versioned_snapshots_restores() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("control.redb");
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/control-v0.redb");
    std::fs::copy(fixture, &path).expect("fixture copied");

    let mut store = ControlStore::open(&path).expect("opens");
    let snap = store
        .load()
        .expect("readable")
        .expect("a snapshot is stored");
    assert_eq!(snap.services(), 1);

    let cfg = Scenario::load("demo")
        .expect("built-in")
        .control_config(Strategy::Shadow, SyncMode::Replay);
    let mut node = ControlNode::restore(cfg, snap, Instant::ZERO);
    let entry = node
        .service(ServiceId(1))
        .expect("the service is registered");
    assert_eq!(entry.host, ServerId(1));
    assert!(!entry.shadows.is_empty(), "the shadows it had asked for");

    // It carries on: the restored registry is saved in the current format and reads back.
    let _ = node.poll_timeout();
    while node.poll_transmit().is_some() {}
    assert!(store.save(&node.snapshot()).expect("saved"));
    let again = store.load().expect("readable").expect("stored");
    assert_eq!(again.services(), 1);
}
