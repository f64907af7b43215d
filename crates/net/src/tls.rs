//! Mutual TLS between nodes (rustls, TLS 1.3): every daemon presents a certificate signed
//! by the deployment's CA whose DNS names are the node names it hosts
//! (`<node>.node.edgeshift`, e.g. `me3.node.edgeshift`, `cell1.node.edgeshift`). A
//! connecting peer checks the listener's certificate for the node it wants; the listener
//! checks the peer's certificate for the node its Hello claims to be. So a node's identity
//! comes from its certificate, not from what it says.

use std::path::Path;
use std::sync::Arc;

use edgeshift_proto::NodeId;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::error::NetError;

/// The DNS name a node's certificate carries (`control_r1` becomes `control-r1`: no
/// underscore in a host name).
#[must_use]
pub fn node_name(node: NodeId) -> String {
    format!("{node}.node.edgeshift").replace('_', "-")
}

/// A daemon's TLS identity and trust: its certificate chain and key, and the CA.
#[derive(Clone)]
pub struct Tls {
    pub(crate) server: Arc<ServerConfig>,
    pub(crate) client: Arc<ClientConfig>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").finish_non_exhaustive()
    }
}

fn tls_err(what: impl std::fmt::Display) -> NetError {
    NetError::Tls(what.to_string())
}

impl Tls {
    /// From PEM: the CA certificate, this daemon's certificate (chain) and its key.
    ///
    /// # Errors
    /// [`NetError::Tls`] when a file is unreadable or not what it should be.
    pub fn from_pem(ca: &[u8], cert: &[u8], key: &[u8]) -> Result<Self, NetError> {
        let ca: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(ca)
            .collect::<Result<_, _>>()
            .map_err(|e| tls_err(format!("CA certificate: {e}")))?;
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
            .collect::<Result<_, _>>()
            .map_err(|e| tls_err(format!("certificate: {e}")))?;
        if ca.is_empty() || chain.is_empty() {
            return Err(tls_err("no certificate in the PEM"));
        }
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| tls_err(format!("key: {e}")))?;
        let mut roots = RootCertStore::empty();
        for c in ca {
            roots
                .add(c)
                .map_err(|e| tls_err(format!("CA certificate: {e}")))?;
        }
        let roots = Arc::new(roots);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(tls_err)?;
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(tls_err)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(tls_err)?;
        let client = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(tls_err)?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(tls_err)?;
        Ok(Self {
            server: Arc::new(server),
            client: Arc::new(client),
        })
    }

    /// The client side of this identity (the CA as roots, this daemon's certificate),
    /// for the deployment's other TLS services: etcd checks the control nodes with it.
    #[must_use]
    pub fn client_config(&self) -> ClientConfig {
        (*self.client).clone()
    }

    /// From PEM files.
    ///
    /// # Errors
    /// [`NetError::Tls`] when a file is unreadable or not what it should be.
    pub fn from_files(ca: &Path, cert: &Path, key: &Path) -> Result<Self, NetError> {
        let read =
            |p: &Path| std::fs::read(p).map_err(|e| tls_err(format!("{}: {e}", p.display())));
        Self::from_pem(&read(ca)?, &read(cert)?, &read(key)?)
    }
}

/// Whether the peer's certificate (already verified against the CA) names `node`.
pub(crate) fn certifies(cert: &CertificateDer<'_>, node: NodeId) -> bool {
    let Ok(ee) = webpki::EndEntityCert::try_from(cert) else {
        return false;
    };
    let Ok(name) = ServerName::try_from(node_name(node)) else {
        return false;
    };
    ee.verify_is_valid_for_subject_name(&name).is_ok()
}

/// The server name to expect from `node`'s listener.
pub(crate) fn server_name(node: NodeId) -> Result<ServerName<'static>, NetError> {
    ServerName::try_from(node_name(node)).map_err(tls_err)
}
