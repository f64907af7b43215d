//! A deployment's certificate authority: one CA, and for each daemon a certificate naming
//! the nodes it hosts (see [`crate::Tls`]). What `edgeshift certs` writes, and what the
//! demo makes for itself.

use edgeshift_proto::NodeId;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use crate::error::NetError;
use crate::tls::node_name;

fn err(e: rcgen::Error) -> NetError {
    NetError::Tls(format!("certificate generation: {e}"))
}

/// A CA that issues node certificates.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    key_pem: String,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").finish_non_exhaustive()
    }
}

/// A daemon's certificate and key, PEM.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The certificate.
    pub cert_pem: String,
    /// Its private key.
    pub key_pem: String,
}

impl Ca {
    /// A fresh CA (ECDSA P-256).
    ///
    /// # Errors
    /// [`NetError::Tls`] if key generation fails.
    pub fn new(name: &str) -> Result<Self, NetError> {
        let key = KeyPair::generate().map_err(err)?;
        let key_pem = key.serialize_pem();
        let mut p = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(p, key).map_err(err)?;
        Ok(Self { issuer, key_pem })
    }

    /// The CA certificate, PEM (what every daemon trusts).
    #[must_use]
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// The CA's private key, PEM (keep it offline).
    #[must_use]
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// A certificate for a service of the deployment reached by host name or address
    /// (`hosts`: the etcd members' `127.0.0.1`, `etcd1.example`), for both ends.
    ///
    /// # Errors
    /// [`NetError::Tls`] if generation fails.
    pub fn issue_host(&self, name: &str, hosts: &[String]) -> Result<Issued, NetError> {
        self.sign(name, hosts.to_vec())
    }

    /// A certificate for a daemon hosting `nodes`, for both ends of a connection.
    ///
    /// # Errors
    /// [`NetError::Tls`] if generation fails.
    pub fn issue(&self, daemon: &str, nodes: &[NodeId]) -> Result<Issued, NetError> {
        self.sign(daemon, nodes.iter().map(|n| node_name(*n)).collect())
    }

    fn sign(&self, name: &str, alt_names: Vec<String>) -> Result<Issued, NetError> {
        let key = KeyPair::generate().map_err(err)?;
        // Addresses become IP SANs, the rest DNS names.
        let mut p = CertificateParams::new(alt_names).map_err(err)?;
        p.distinguished_name.push(DnType::CommonName, name);
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let cert = p.signed_by(&key, &self.issuer).map_err(err)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}
