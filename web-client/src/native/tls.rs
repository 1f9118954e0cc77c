//! TLS settings, one type for both ends: a client (the probe, the upstream monitor)
//! and the server read the same fields, and each builds its own rustls
//! configuration from them (the server's lives in `healthweb-server`).

use std::{path::Path, path::PathBuf, sync::Arc};

use rustls::{
    ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime, pem::PemObject},
};
use serde::Deserialize;

use super::ConnectError;

/// Where the TLS material lives and how far to trust the peer.
///
/// As a client: `ca` verifies the server (the system's roots when absent),
/// `cert` with `key` is a client certificate (mTLS). As the server: `cert` and
/// `key` are its identity, and `ca`, when given, must have signed every client's
/// certificate (mTLS).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// A CA bundle (PEM): whom to trust on the other end.
    pub ca: Option<PathBuf>,
    /// A certificate chain (PEM), leaf first: who we are.
    pub cert: Option<PathBuf>,
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1) of `cert`.
    pub key: Option<PathBuf>,
    /// Client only: the name to verify the server's certificate against, instead
    /// of the address's host.
    pub server_name: Option<String>,
    /// Client only: accept any server certificate (tests and emergencies).
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// The certificates of a PEM file; the reason, if none can be had.
pub fn pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| e.to_string())?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("no PEM CERTIFICATE block found".into());
    }
    Ok(certs)
}

/// The private key of a PEM file; the reason, if there is none.
pub fn pem_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| e.to_string())
}

fn invalid(what: &str, path: &Path, reason: impl std::fmt::Display) -> ConnectError {
    ConnectError::Invalid(format!(
        "cannot load {what} from {}: {reason}",
        path.display()
    ))
}

/// A client configuration with no ALPN (hyper-rustls sets it for the wire; the
/// server's history store uses it for PostgreSQL).
pub fn client_config(settings: &TlsSettings) -> Result<ClientConfig, ConnectError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ConnectError::Invalid(e.to_string()))?;
    let builder = if settings.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
    } else {
        let mut roots = RootCertStore::empty();
        match &settings.ca {
            Some(path) => {
                for cert in pem_certs(path).map_err(|e| invalid("CA", path, e))? {
                    roots.add(cert).map_err(|e| invalid("CA", path, e))?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
                if roots.is_empty() {
                    return Err(ConnectError::Invalid(
                        "no system CA certificates found; pass --tls-ca FILE".into(),
                    ));
                }
            }
        }
        builder.with_root_certificates(roots)
    };
    match (&settings.cert, &settings.key) {
        (Some(cert), Some(key)) => {
            let key = pem_key(key).map_err(|e| invalid("private key", key, e))?;
            let chain = pem_certs(cert).map_err(|e| invalid("certificate", cert, e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| ConnectError::Invalid(format!("bad client certificate: {e}")))
        }
        (None, None) => Ok(builder.with_no_client_auth()),
        _ => Err(ConnectError::Invalid(
            "a client certificate needs both --tls-cert and --tls-key".into(),
        )),
    }
}

/// Accepts any server certificate, still checking that the handshake itself is signed.
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
