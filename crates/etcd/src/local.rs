//! [`LocalEtcd`]: an etcd cluster of local processes on loopback ports, for the demo and
//! the tests (Debian's `etcd-server` package provides the `etcd` binary).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Client, EtcdError};

/// How long a new cluster may take to elect its leader.
const START_TIMEOUT: Duration = Duration::from_secs(20);

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

fn free_port() -> Result<u16, std::io::Error> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl LocalEtcd {
    /// Starts `n` members under `dir` (one data directory each) and waits until the
    /// cluster answers.
    ///
    /// # Errors
    /// No binary, a member that does not start, or a cluster that does not come up.
    pub async fn start(dir: &Path, n: usize) -> Result<Self, LocalError> {
        let binary = etcd_binary().ok_or(LocalError::NoBinary)?;
        let mut members = Vec::new();
        for i in 1..=n.max(1) {
            let name = format!("etcd{i}");
            let port =
                |what| free_port().map_err(|e| LocalError::Spawn(format!("{name} {what}"), e));
            members.push(Member {
                client_url: format!("http://127.0.0.1:{}", port("client port")?),
                peer_url: format!("http://127.0.0.1:{}", port("peer port")?),
                dir: dir.join(&name),
                name,
                child: None,
            });
        }
        let mut me = Self { members, binary };
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
        let client = Client::new(&self.endpoints())
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
