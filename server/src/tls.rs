//! TLS for the one port, through rustls: native gRPC over HTTP/2 (ALPN `h2`),
//! gRPC-Web and the status page over `https` (ALPN `http/1.1`), and optional
//! client certificates (mTLS) checked against a CA. The settings are the same
//! [`TlsSettings`] type clients use; this builds the server's side of them.

use std::{path::Path, sync::Arc};

use healthweb_client::native::{TlsSettings, pem_certs, pem_key};
use rustls::{
    RootCertStore, ServerConfig, pki_types::CertificateDer, server::WebPkiClientVerifier,
};

/// Why the TLS material could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("cannot load {what} from {path}: {reason}")]
    Load {
        /// Which file this is (certificate, key, client CA).
        what: &'static str,
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// rustls refused the combination (a key that does not match the certificate...),
    /// or a setting only a client can have.
    #[error("invalid TLS configuration: {0}")]
    Config(String),
}

fn load_certs(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    pem_certs(path).map_err(|reason| TlsError::Load {
        what,
        path: path.display().to_string(),
        reason,
    })
}

/// Reads the files and builds the rustls configuration, ALPN included: `cert` and
/// `key` are the server's identity; `ca`, when given, must have signed every
/// client's certificate.
pub fn server_config(settings: &TlsSettings) -> Result<Arc<ServerConfig>, TlsError> {
    let (Some(cert), Some(key)) = (&settings.cert, &settings.key) else {
        return Err(TlsError::Config(
            "serving TLS needs both a certificate and its key (--tls-cert, --tls-key)".into(),
        ));
    };
    if settings.server_name.is_some() || settings.insecure_skip_verify {
        return Err(TlsError::Config(
            "server_name and insecure_skip_verify are client settings".into(),
        ));
    }
    let certs = load_certs("certificate", cert)?;
    let key = pem_key(key).map_err(|reason| TlsError::Load {
        what: "private key",
        path: key.display().to_string(),
        reason,
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match &settings.ca {
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for cert in load_certs("client CA", path)? {
                roots.add(cert).map_err(|e| TlsError::Load {
                    what: "client CA",
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                .build()
                .map_err(|e| TlsError::Config(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
