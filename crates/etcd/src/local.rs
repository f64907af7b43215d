//! [`LocalEtcd`]: an etcd cluster of local processes on loopback ports, for the demo and
//! the tests (Debian's `etcd-server` package provides the `etcd` binary).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Client, EtcdError};

/// How long a new cluster may take to elect its leader. A quiet machine needs a second or
/// two; a loaded one (a CI run beside other work) has needed more than 20 s.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// One member.
#[derive(Debug)]
struct Member {
    name: String,
    client_url: String,
    peer_url: String,
    dir: PathBuf,
    child: Option<Child>,
}

/// A local etcd cluster; its processes are killed when it is dropped.
#[derive(Debug)]
pub struct LocalEtcd {
    members: Vec<Member>,
    binary: PathBuf,
    tls: Option<LocalTls>,
}

/// TLS for a local cluster's clients: the members serve `https://` with `cert` and accept
/// only clients with a certificate of `ca` (etcd's `--client-cert-auth`).
#[derive(Clone, Debug)]
pub struct LocalTls {
    /// The CA's certificate, PEM.
    pub ca: PathBuf,
    /// The members' certificate, PEM (valid for 127.0.0.1).
    pub cert: PathBuf,
    /// Its key, PEM.
    pub key: PathBuf,
    /// A client setup the members accept (roots and a certificate of `ca`).
    pub client: rustls::ClientConfig,
}

/// Why a local cluster did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocalError {
    /// No `etcd` binary on the PATH.
    #[error("no etcd binary on the PATH (Debian: apt-get install etcd-server)")]
    NoBinary,
    /// A process did not start, or a port or directory was not available.
    #[error("etcd member {0}: {1}")]
    Spawn(String, std::io::Error),
    /// The cluster did not answer in time.
    #[error("local etcd did not come up within {0:?}: {1}")]
    Timeout(Duration, String),
}

/// The `etcd` binary on the PATH, if there is one.
#[must_use]
pub fn etcd_binary() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("etcd"))
        .find(|p| p.is_file())
}

impl LocalEtcd {
    /// Starts `n` members under `dir` (one data directory each) and waits until the
    /// cluster answers.
    ///
    /// # Errors
    /// No binary, a member that does not start, or a cluster that does not come up.
    pub async fn start(dir: &Path, n: usize) -> Result<Self, LocalError> {
        Self::start_with(dir, n, None).await
    }

    /// [`LocalEtcd::start`], serving clients over TLS only.
    ///
    /// # Errors
    /// As [`LocalEtcd::start`].
    pub async fn start_tls(dir: &Path, n: usize, tls: LocalTls) -> Result<Self, LocalError> {
        Self::start_with(dir, n, Some(tls)).await
    }

    async fn start_with(dir: &Path, n: usize, tls: Option<LocalTls>) -> Result<Self, LocalError> {
        let binary = etcd_binary().ok_or(LocalError::NoBinary)?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut members = Vec::new();
        for i in 1..=n.max(1) {
            let name = format!("etcd{i}");
            let port = |what| {
                crate::loopback_port()
                    .map(|a| a.port())
                    .map_err(|e| LocalError::Spawn(format!("{name} {what}"), e))
            };
            members.push(Member {
                client_url: format!("{scheme}://127.0.0.1:{}", port("client port")?),
                peer_url: format!("http://127.0.0.1:{}", port("peer port")?),
                dir: dir.join(&name),
                name,
                child: None,
            });
        }
        let mut me = Self {
            members,
            binary,
            tls,
        };
        for i in 0..me.members.len() {
            me.spawn(i)?;
        }
        me.wait_ready().await?;
        Ok(me)
    }

    fn initial_cluster(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn spawn(&mut self, i: usize) -> Result<(), LocalError> {
        let cluster = self.initial_cluster();
        let tls_args: Vec<std::ffi::OsString> = match &self.tls {
            Some(t) => vec![
                "--cert-file".into(),
                t.cert.clone().into(),
                "--key-file".into(),
                t.key.clone().into(),
                "--client-cert-auth".into(),
                "--trusted-ca-file".into(),
                t.ca.clone().into(),
            ],
            None => Vec::new(),
        };
        let m = &mut self.members[i];
        std::fs::create_dir_all(&m.dir).map_err(|e| LocalError::Spawn(m.name.clone(), e))?;
        let log = std::fs::File::create(m.dir.with_extension("log"))
            .map_err(|e| LocalError::Spawn(m.name.clone(), e))?;
        let child = Command::new(&self.binary)
            .args(["--name", &m.name])
            .arg("--data-dir")
            .arg(&m.dir)
            .args(["--listen-client-urls", &m.client_url])
            .args(["--advertise-client-urls", &m.client_url])
            .args(["--listen-peer-urls", &m.peer_url])
            .args(["--initial-advertise-peer-urls", &m.peer_url])
            .args(["--initial-cluster", &cluster])
            .args(["--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", "edgeshift-local"])
            // Quick elections on loopback: heartbeats every 50 ms, an election after 500.
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            .args(&tls_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| LocalError::Spawn(m.name.clone(), e))?;
        m.child = Some(child);
        Ok(())
    }

    async fn wait_ready(&self) -> Result<(), LocalError> {
        let deadline = Instant::now() + START_TIMEOUT;
        let client = self
            .client()
            .map_err(|e| LocalError::Timeout(Duration::ZERO, e.to_string()))?;
        loop {
            let probe: Result<_, EtcdError> =
                client.put(b"/edgeshift/local/ready", b"1", None).await;
            match probe {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() > deadline => {
                    return Err(LocalError::Timeout(START_TIMEOUT, e.to_string()));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// A client of the cluster (over TLS if it serves TLS).
    ///
    /// # Errors
    /// As [`Client::new`].
    pub fn client(&self) -> Result<Client, EtcdError> {
        match &self.tls {
            Some(t) => Client::with_tls(&self.endpoints(), t.client.clone()),
            None => Client::new(&self.endpoints()),
        }
    }

    /// The client URLs of the members, in order.
    #[must_use]
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client_url.clone()).collect()
    }

    /// Kills member `i` (0-based) with SIGKILL; its data stays.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.members.get_mut(i).and_then(|m| m.child.take()) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for LocalEtcd {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}
