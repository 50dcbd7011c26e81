//! `--tls`: a certificate authority and a server certificate made at start, so clients talk to
//! the fake over HTTPS as they do to AWS and trust it through a CA bundle
//! (`SSL_CERT_FILE=PATH` for the SDK's default HTTPS client).
//!
//! The CA (ECDSA P-256, valid for a day either side of now) signs one server certificate for
//! `127.0.0.1` and `localhost`. Only the CA certificate goes to the bundle: rustls/webpki wants
//! an end-entity certificate issued by a trust anchor, not a self-signed one. Both keys live in
//! memory only. The server speaks HTTP/1.1 (ALPN `http/1.1`), TLS 1.2 and 1.3, with rustls on
//! aws-lc-rs, the same crypto the SDK's client uses.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::TlsAcceptor;

/// What `--tls` sets up: the acceptor for the listener and the CA certificate clients trust.
pub struct Tls {
    pub acceptor: TlsAcceptor,
    /// The CA certificate, PEM: the bundle to give clients (`--cert-out`).
    pub ca_pem: String,
}

impl Tls {
    /// Makes the CA, the server certificate and the rustls server configuration.
    pub fn generate() -> Result<Tls, String> {
        let err = |what: &str, e: &dyn std::fmt::Display| format!("TLS setup: {what}: {e}");
        let now = time_now();
        let day = std::time::Duration::from_secs(86_400);

        let ca_key = KeyPair::generate().map_err(|e| err("CA key", &e))?;
        let mut ca = CertificateParams::default();
        // A name of its own: a client trusting another fake's CA must not take it for the
        // issuer (it would report a bad signature instead of an unknown issuer).
        let unique = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        ca.distinguished_name = name(&format!(
            "fake-aws test CA {} {unique:x}",
            std::process::id()
        ));
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca.not_before = now - day;
        ca.not_after = now + day;
        let ca_cert = ca
            .self_signed(&ca_key)
            .map_err(|e| err("CA certificate", &e))?;

        let server_key = KeyPair::generate().map_err(|e| err("server key", &e))?;
        let mut server = CertificateParams::default();
        server.distinguished_name = name("127.0.0.1");
        server.subject_alt_names = vec![
            SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()),
            SanType::DnsName("localhost".try_into().map_err(|e| err("SAN", &e))?),
        ];
        server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        server.not_before = now - day;
        server.not_after = now + day;
        let issuer = Issuer::new(ca, ca_key);
        let server_cert = server
            .signed_by(&server_key, &issuer)
            .map_err(|e| err("server certificate", &e))?;

        let chain = vec![
            CertificateDer::from(server_cert.der().to_vec()),
            CertificateDer::from(ca_cert.der().to_vec()),
        ];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| err("protocol versions", &e))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| err("server certificate", &e))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            ca_pem: ca_cert.pem(),
        })
    }
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makes_a_ca_and_a_server_certificate() {
        let tls = Tls::generate().expect("generate");
        assert!(tls.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(tls.ca_pem.matches("BEGIN CERTIFICATE").count(), 1);
    }
}
