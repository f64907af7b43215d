//! `edgeshift bench control-store`: how many registry changes one control leader handles
//! per second with its registry in redb and in etcd, and how long each message holds the
//! control node's event loop (what a 1005 arriving behind it waits). Prints figures;
//! asserts nothing.
//!
//! The control node of the `demo` scenario (three cells, three ME servers) gets `services`
//! deployments, then `messages` handover predictions (1002), alternately a prediction of
//! the next cell and a withdrawal, so that every message changes the registry. After each
//! message the host's work is done as the daemon does it: the transmits drained, then the
//! snapshot saved (redb: a committed transaction before the next message; etcd: handed to
//! the writer task, which writes the newest snapshot conditioned on the term).

use std::sync::Arc;
use std::time::{Duration, Instant as Wall};

use anyhow::Context as _;
use edgeshift_control::{ControlNode, Strategy};
use edgeshift_etcd::{Client, LocalEtcd};
use edgeshift_live::replica::leader::Elector;
use edgeshift_live::replica::registry::{EtcdRegistry, EtcdWriter};
use edgeshift_live::store::ControlStore;
use edgeshift_proto::{
    Candidate, CellId, Deploy, HandoverPrediction, Instant, Message, NodeId, Role, ServiceId,
    SyncMode, Timing, UeId,
};
use edgeshift_world::Scenario;

/// Options of `bench control-store`.
#[derive(clap::Args)]
pub(crate) struct StoreArgs {
    /// Services in the registry.
    #[arg(long, default_value_t = 100)]
    services: u32,
    /// Predictions handled per store.
    #[arg(long, default_value_t = 2000)]
    messages: u32,
    /// An etcd cluster to use (client URLs, comma-separated) instead of a local one.
    #[arg(long, value_delimiter = ',')]
    etcd: Vec<String>,
    /// Members of the local etcd cluster.
    #[arg(long, default_value_t = 3)]
    members: usize,
}

/// A control node with `n` services deployed.
fn setup(n: u32) -> anyhow::Result<ControlNode> {
    let s = Scenario::load("demo")?;
    let cells: Vec<u32> = s.cells.iter().map(|c| c.id).collect();
    let spec = edgeshift_world::service_spec("mem", 1 << 20, 8, 0)?;
    let mut node = ControlNode::new(
        s.control_config(Strategy::Shadow, SyncMode::Replay),
        Instant::ZERO,
    );
    for i in 0..n {
        let m = Deploy {
            service: ServiceId(i + 1),
            ue: UeId(i + 1),
            cell: CellId(cells[i as usize % cells.len()]),
            spec: spec.clone(),
        };
        node.handle_message(Instant::ZERO, NodeId::CONTROL, m.into());
    }
    while node.poll_transmit().is_some() {}
    while node.poll_event().is_some() {}
    Ok(node)
}

fn prediction(i: u32, n: u32, cells: &[u32], now: Instant) -> Message {
    let ue = i % n;
    let cell = cells[ue as usize % cells.len()];
    let next = cells[(ue as usize + 1) % cells.len()];
    // Every other round per UE withdraws, so that each message changes the registry.
    let candidates = if (i / n).is_multiple_of(2) {
        vec![Candidate {
            cell: CellId(next),
            likelihood: 0.9,
        }]
    } else {
        Vec::new()
    };
    HandoverPrediction {
        ue: UeId(ue + 1),
        source: CellId(cell),
        candidates,
        timing: Some(Timing::at(now + Duration::from_secs(5))),
    }
    .into()
}

/// Feeds the messages; `save` is the host's persist step. Returns per-message ms.
async fn drive(
    a: &StoreArgs,
    node: &mut ControlNode,
    mut save: impl FnMut(&ControlNode) -> anyhow::Result<()>,
) -> anyhow::Result<Vec<f64>> {
    let cells: Vec<u32> = Scenario::load("demo")?.cells.iter().map(|c| c.id).collect();
    let mut times = Vec::with_capacity(a.messages as usize);
    for i in 0..a.messages {
        let now = Instant::from_millis(u64::from(i));
        let m = prediction(i, a.services.max(1), &cells, now);
        let t0 = Wall::now();
        node.handle_message(now, NodeId::Cell(CellId(cells[0])), m);
        while node.poll_transmit().is_some() {}
        while node.poll_event().is_some() {}
        save(node)?;
        times.push(t0.elapsed().as_secs_f64() * 1e3);
        // Let the etcd writer run between messages, as the event loop would.
        tokio::task::yield_now().await;
    }
    Ok(times)
}

fn row(name: &str, n: u32, total: Duration, writes: u64, times: &mut [f64]) {
    println!(
        "{name:<22} {:>12.0} {:>12} {:>10.3} {:>10.3} {:>10.3}",
        f64::from(n) / total.as_secs_f64(),
        writes,
        crate::summary::pct(times, 0.5),
        crate::summary::pct(times, 0.99),
        times.iter().copied().fold(0.0, f64::max)
    );
}

pub(crate) fn run_bench(a: &StoreArgs) -> anyhow::Result<bool> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(bench(a))?;
    Ok(true)
}

async fn bench(a: &StoreArgs) -> anyhow::Result<()> {
    println!(
        "one control leader, {} services, {} predictions (each changes the registry)\n",
        a.services, a.messages
    );
    println!(
        "{:<22} {:>12} {:>12} {:>10} {:>10} {:>10}",
        "registry", "messages/s", "writes", "p50 ms", "p99 ms", "max ms"
    );
    let dir = tempfile::tempdir().context("temp dir")?;

    // redb: a committed transaction after each change, before the next message.
    let mut node = setup(a.services)?;
    let mut store = ControlStore::open(&dir.path().join("control.redb"))?;
    let mut writes = 0;
    let t0 = Wall::now();
    let mut times = drive(a, &mut node, |n| {
        writes += u64::from(store.save(&n.snapshot())?);
        Ok(())
    })
    .await?;
    row("redb (file)", a.messages, t0.elapsed(), writes, &mut times);

    // etcd: the leader's writer, conditioned on its term; the total waits for the last write.
    let local;
    let endpoints = if a.etcd.is_empty() {
        if edgeshift_etcd::local::etcd_binary().is_none() {
            println!(
                "etcd                   SKIPPED: no etcd binary (apt-get install etcd-server) and no --etcd"
            );
            return Ok(());
        }
        local = LocalEtcd::start(&dir.path().join("etcd"), a.members.max(1)).await?;
        local.endpoints()
    } else {
        a.etcd.clone()
    };
    let etcd = Arc::new(Client::new(&endpoints)?);
    let prefix = format!("/edgeshift/bench/{}", std::process::id());
    let elector = Elector::new(
        etcd.clone(),
        &prefix,
        "bench".into(),
        Duration::from_secs(5),
    );
    let term = elector
        .try_lead()
        .await?
        .context("another leader holds the bench's key")?;
    let (registry, _) =
        EtcdRegistry::open(etcd.clone(), &prefix, elector.key(), term.revision).await?;
    let (deposed, _rx) = tokio::sync::watch::channel(false);
    let mut writer = EtcdWriter::spawn(registry, deposed);
    let mut node = setup(a.services)?;
    let t0 = Wall::now();
    let mut times = drive(a, &mut node, |n| {
        writer.save(&n.snapshot())?;
        Ok(())
    })
    .await?;
    writer.flushed().await;
    let name = format!("etcd ({} members)", endpoints.len());
    row(&name, a.messages, t0.elapsed(), writer.writes(), &mut times);
    elector.resign(&term).await;
    println!(
        "\nmessages/s counts until the last change is durable; p50/p99/max is how long one \
         message holds the event loop (handling and the save step), which a 1005 behind it waits"
    );
    Ok(())
}
