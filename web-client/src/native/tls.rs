//! The rustls client configuration from the probe's TLS options: which roots to
//! trust, an optional client certificate, and ALPN for the wire.

use std::{path::Path, sync::Arc};

use rustls::{
    ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime, pem::PemObject},
};

use super::{ConnectError, Protocol, TlsOptions};

/// The certificates of a PEM file; the reason, if none can be had. The server's TLS
/// setup reads its own files with it too.
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

fn certs(what: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, ConnectError> {
    pem_certs(path).map_err(|e| {
        ConnectError::Invalid(format!("cannot load {what} from {}: {e}", path.display()))
    })
}

/// Builds the client configuration; ALPN offers `h2` for native gRPC and
/// `http/1.1` for gRPC-Web.
pub fn client_config(
    options: &TlsOptions,
    protocol: Protocol,
) -> Result<Arc<ClientConfig>, ConnectError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ConnectError::Invalid(e.to_string()))?;
    let builder = if options.no_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
    } else {
        let mut roots = RootCertStore::empty();
        match &options.ca {
            Some(path) => {
                for cert in certs("CA", path)? {
                    roots.add(cert).map_err(|e| {
                        ConnectError::Invalid(format!("bad CA in {}: {e}", path.display()))
                    })?;
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
    let mut config = match (&options.cert, &options.key) {
        (Some(cert), Some(key)) => {
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                ConnectError::Invalid(format!(
                    "cannot load private key from {}: {e}",
                    key.display()
                ))
            })?;
            builder
                .with_client_auth_cert(certs("certificate", cert)?, key)
                .map_err(|e| ConnectError::Invalid(format!("bad client certificate: {e}")))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err(ConnectError::Invalid(
                "a client certificate needs both --tls-cert and --tls-key".into(),
            ));
        }
    };
    config.alpn_protocols = match protocol {
        Protocol::Grpc => vec![b"h2".to_vec()],
        Protocol::GrpcWeb | Protocol::GrpcWebText => vec![b"http/1.1".to_vec()],
    };
    Ok(Arc::new(config))
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
