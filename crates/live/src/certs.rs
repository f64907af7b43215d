//! Certificates for a deployment: a CA and, for every daemon, a certificate naming the
//! nodes it hosts (`edgeshift certs --config FILE --out DIR`; the demo makes its own), and
//! with etcd over `https://` one for its members (the control nodes show theirs to etcd).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use edgeshift_net::pki::Ca;
use edgeshift_net::{NetError, Tls};
use edgeshift_proto::{CellId, NodeId, ServerId, UeId};

use crate::config::Deployment;
use crate::daemon::Kind;

/// Why certificates could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    /// Generation failed.
    #[error(transparent)]
    Net(#[from] NetError),
    /// A file could not be written.
    #[error("{path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The file name of a daemon's certificate and key (`<name>.pem`, `<name>.key`).
#[must_use]
pub fn cert_name(kind: &Kind) -> String {
    match kind {
        // A group's replicas are one node, its control node: they share its certificate.
        Kind::Control | Kind::Replica { region: 0, .. } => "control".into(),
        Kind::Region { id } | Kind::Replica { region: id, .. } => format!("control_r{id}"),
        Kind::Edge { id, .. } => format!("me{id}"),
        Kind::Ran { name } => format!("ran-{name}"),
        Kind::Ue { id } => format!("ue{id}"),
    }
}

/// Every daemon of a deployment with the nodes its certificate must name.
#[must_use]
pub fn daemons(dep: &Deployment) -> Vec<(Kind, Vec<NodeId>)> {
    let mut out = Vec::new();
    if dep.control.listen.is_some() {
        out.push((Kind::Control, vec![NodeId::CONTROL]));
    }
    for n in 1..=dep.control.replicas.len() {
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        out.push((Kind::Replica { region: 0, n }, vec![NodeId::CONTROL]));
    }
    for r in &dep.regions {
        let node = NodeId::Control(edgeshift_proto::RegionId(r.id));
        if r.listen.is_some() {
            out.push((Kind::Region { id: r.id }, vec![node]));
        }
        for n in 1..=r.replicas.len() {
            let n = u32::try_from(n).unwrap_or(u32::MAX);
            out.push((Kind::Replica { region: r.id, n }, vec![node]));
        }
    }
    for e in &dep.edges {
        let mut nodes = vec![NodeId::Server(ServerId(e.id))];
        if dep.control.on_edge == Some(e.id) {
            nodes.push(NodeId::CONTROL);
        }
        out.push((
            Kind::Edge {
                id: e.id,
                with_control: false,
            },
            nodes,
        ));
    }
    for r in &dep.rans {
        let nodes = r.cells.iter().map(|c| NodeId::Cell(CellId(*c))).collect();
        out.push((
            Kind::Ran {
                name: r.name.clone(),
            },
            nodes,
        ));
    }
    for u in &dep.ues {
        out.push((Kind::Ue { id: u.id }, vec![NodeId::Ue(UeId(u.id))]));
    }
    out
}

fn write(path: &Path, text: &str, mode: u32) -> Result<(), CertsError> {
    let e = |source| CertsError::Write {
        path: path.to_owned(),
        source,
    };
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(e)
}

/// Writes `ca.pem`, `ca.key` and every daemon's `<name>.pem` and `<name>.key` into `out`
/// (keys readable by the owner only), and with `store = "etcd"` over `https://` the
/// members' `etcd.pem` and `etcd.key`; returns the files written.
///
/// # Errors
/// See [`CertsError`].
pub fn write_all(dep: &Deployment, out: &Path) -> Result<Vec<PathBuf>, CertsError> {
    write_with(&Ca::new("edgeshift deployment CA")?, dep, out)
}

/// [`write_all`] with a given CA.
///
/// # Errors
/// See [`CertsError`].
pub fn write_with(ca: &Ca, dep: &Deployment, out: &Path) -> Result<Vec<PathBuf>, CertsError> {
    std::fs::create_dir_all(out).map_err(|source| CertsError::Write {
        path: out.to_owned(),
        source,
    })?;
    let mut files = Vec::new();
    let mut put = |name: &str, text: &str, mode: u32| {
        let p = out.join(name);
        write(&p, text, mode)?;
        files.push(p);
        Ok::<(), CertsError>(())
    };
    put("ca.pem", &ca.cert_pem(), 0o644)?;
    put("ca.key", ca.key_pem(), 0o600)?;
    let mut done = std::collections::BTreeSet::new();
    for (kind, nodes) in daemons(dep) {
        let name = cert_name(&kind);
        if !done.insert(name.clone()) {
            continue; // The replicas' shared certificate.
        }
        let issued = ca.issue(&name, &nodes)?;
        put(&format!("{name}.pem"), &issued.cert_pem, 0o644)?;
        put(&format!("{name}.key"), &issued.key_pem, 0o600)?;
    }
    let hosts = etcd_hosts(dep);
    if !hosts.is_empty() {
        let issued = ca.issue_host("etcd", &hosts)?;
        put("etcd.pem", &issued.cert_pem, 0o644)?;
        put("etcd.key", &issued.key_pem, 0o600)?;
    }
    Ok(files)
}

/// The hosts of the `https://` etcd endpoints of `dep` (what the members' certificate
/// must name).
#[must_use]
pub fn etcd_hosts(dep: &Deployment) -> Vec<String> {
    let mut hosts: Vec<String> = dep
        .control
        .etcd
        .iter()
        .filter_map(|u| u.strip_prefix("https://"))
        .map(|rest| {
            let authority = rest.split('/').next().unwrap_or(rest);
            match authority.strip_prefix('[') {
                // [v6]:port
                Some(v6) => v6.split(']').next().unwrap_or(v6).to_owned(),
                None => authority
                    .rsplit_once(':')
                    .map_or(authority, |(h, _)| h)
                    .to_owned(),
            }
        })
        .collect();
    hosts.sort();
    hosts.dedup();
    hosts
}

/// Certificates for every daemon, in memory (the one-process demo).
///
/// # Errors
/// [`NetError::Tls`] if generation fails.
pub fn in_memory(dep: &Deployment) -> Result<BTreeMap<String, Tls>, NetError> {
    in_memory_with(&Ca::new("edgeshift demo CA")?, dep)
}

/// [`in_memory`] with a given CA.
///
/// # Errors
/// [`NetError::Tls`] if generation fails.
pub fn in_memory_with(ca: &Ca, dep: &Deployment) -> Result<BTreeMap<String, Tls>, NetError> {
    let ca_pem = ca.cert_pem();
    let mut done = std::collections::BTreeSet::new();
    daemons(dep)
        .into_iter()
        .filter(|(kind, _)| done.insert(cert_name(kind)))
        .map(|(kind, nodes)| {
            let name = cert_name(&kind);
            let issued = ca.issue(&name, &nodes)?;
            let tls = Tls::from_pem(
                ca_pem.as_bytes(),
                issued.cert_pem.as_bytes(),
                issued.key_pem.as_bytes(),
            )?;
            Ok((name, tls))
        })
        .collect()
}

/// TLS for a local etcd served with a certificate of `ca` (the demo's): the files it
/// reads, written into `dir`, and a client setup it accepts (the control node's).
///
/// # Errors
/// See [`CertsError`].
pub fn local_etcd(ca: &Ca, dir: &Path) -> Result<edgeshift_etcd::LocalTls, CertsError> {
    std::fs::create_dir_all(dir).map_err(|source| CertsError::Write {
        path: dir.to_owned(),
        source,
    })?;
    let member = ca.issue_host("etcd", &["127.0.0.1".into()])?;
    let control = ca.issue("control", &[NodeId::CONTROL])?;
    let client = Tls::from_pem(
        ca.cert_pem().as_bytes(),
        control.cert_pem.as_bytes(),
        control.key_pem.as_bytes(),
    )?
    .client_config();
    let file = |name: &str, text: &str, mode: u32| {
        let p = dir.join(name);
        write(&p, text, mode).map(|()| p)
    };
    Ok(edgeshift_etcd::LocalTls {
        ca: file("ca.pem", &ca.cert_pem(), 0o644)?,
        cert: file("etcd.pem", &member.cert_pem, 0o644)?,
        key: file("etcd.key", &member.key_pem, 0o600)?,
        client,
    })
}
