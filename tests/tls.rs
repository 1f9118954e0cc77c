//! TLS on the one port, against the real binary: native gRPC over HTTP/2 with
//! ALPN, gRPC-Web and /healthz over https, and mTLS with a CA made here.

use std::process::Command;

use healthweb_client::{
    Options, ServingStatus,
    native::{self, ConnectError, NativeClient, Protocol, Target, TlsSettings},
};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

use crate::util::{Binary, LIMIT};

/// A CA, a server certificate for 127.0.0.1, localhost and example.com (the name
/// grpc-health-probe's README overrides with), and a client certificate.
pub struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "healthweb test CA");
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let write = |name: &str, text: String| std::fs::write(dir.path().join(name), text).unwrap();
        write("ca.pem", ca_cert.pem());
        for (name, sans) in [
            (
                "server",
                vec![
                    "127.0.0.1".to_owned(),
                    "localhost".to_owned(),
                    "example.com".to_owned(),
                ],
            ),
            ("client", vec!["probe.example".to_owned()]),
        ] {
            let key = KeyPair::generate().unwrap();
            let cert = CertificateParams::new(sans)
                .unwrap()
                .signed_by(&key, &issuer)
                .unwrap();
            write(&format!("{name}.pem"), cert.pem());
            write(&format!("{name}.key"), key.serialize_pem());
        }
        Self { dir }
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_owned()
    }

    /// `healthweb serve` over TLS with the server certificate, and `args`.
    pub fn serve(&self, args: &[&str]) -> Binary {
        let (cert, key) = (self.path("server.pem"), self.path("server.key"));
        Binary::serve(&[&["--tls-cert", &cert, "--tls-key", &key], args].concat())
    }
}

async fn tls_client(pki: &Pki, url: &str, identity: bool) -> Result<NativeClient, ConnectError> {
    let tls = TlsSettings {
        ca: Some(pki.path("ca.pem").into()),
        cert: identity.then(|| pki.path("client.pem").into()),
        key: identity.then(|| pki.path("client.key").into()),
        server_name: Some("localhost".into()),
        insecure_skip_verify: false,
    };
    let target = Target {
        url: url.to_owned(),
        protocol: Protocol::Grpc,
        tls,
        connect_timeout: LIMIT,
        user_agent: None,
        gzip: false,
    };
    native::connect(&target, Options::default()).await
}

fn curl(args: &[&str]) -> (bool, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[tokio::test]
async fn native_grpc_and_grpc_web_over_tls() {
    let pki = Pki::new();
    let server = pki.serve(&["--service", "payments=NOT_SERVING"]);
    let url = format!("https://{}", server.addr);
    let client = tls_client(&pki, &url, false).await.unwrap();
    assert_eq!(
        client.check("payments").await.unwrap(),
        ServingStatus::NotServing
    );

    // gRPC-Web over https, HTTP/1.1 and HTTP/2 by ALPN.
    for version in ["--http1.1", "--http2"] {
        let (ok, out) = curl(&[
            version,
            "--cacert",
            &pki.path("ca.pem"),
            "-w",
            " %{http_version}",
            "-X",
            "POST",
            "-H",
            "content-type: application/grpc-web-text",
            "-H",
            "accept: application/grpc-web-text",
            "-d",
            "AAAAAAA=",
            &format!(
                "https://localhost:{}/grpc.health.v1.Health/Check",
                server.addr.port()
            ),
        ]);
        assert!(ok, "{out}");
        let want_version = if version == "--http2" { "2" } else { "1.1" };
        assert_eq!(
            out,
            format!("AAAAAAIIAQ==gAAAAA9ncnBjLXN0YXR1czowDQo= {want_version}")
        );
    }
    let (ok, out) = curl(&[
        "--cacert",
        &pki.path("ca.pem"),
        &format!("https://localhost:{}/healthz", server.addr.port()),
    ]);
    assert!(ok, "{out}");
    assert_eq!(out, "SERVING\n");
    // A cleartext client gets nothing it could mistake for an answer.
    let (ok, _) = curl(&[&format!("http://127.0.0.1:{}/healthz", server.addr.port())]);
    assert!(!ok);
}

#[tokio::test]
async fn mtls_requires_a_client_certificate_from_the_ca() {
    let pki = Pki::new();
    let server = pki.serve(&["--tls-client-ca", &pki.path("ca.pem")]);
    let url = format!("https://{}", server.addr);
    let client = tls_client(&pki, &url, true).await.unwrap();
    assert_eq!(client.check("").await.unwrap(), ServingStatus::Serving);

    let refused = match tls_client(&pki, &url, false).await {
        Err(_) => true,
        Ok(client) => client.check("").await.is_err(),
    };
    assert!(refused, "a client without a certificate got through");

    let healthz = format!("https://localhost:{}/healthz", server.addr.port());
    let (ok, _) = curl(&["--cacert", &pki.path("ca.pem"), &healthz]);
    assert!(!ok);
    let (ok, out) = curl(&[
        "--cacert",
        &pki.path("ca.pem"),
        "--cert",
        &pki.path("client.pem"),
        "--key",
        &pki.path("client.key"),
        &healthz,
    ]);
    assert!(ok, "{out}");
    assert_eq!(out, "SERVING\n");
}

#[test]
fn unusable_tls_files_are_reported() {
    let pki = Pki::new();
    let (ca, cert) = (pki.path("ca.pem"), pki.path("server.pem"));
    for (files, says) in [
        (
            &["--tls-cert", &ca, "--tls-key", "/nonexistent.key"][..],
            "cannot load private key from /nonexistent.key",
        ),
        (&["--tls-cert", &cert], "--tls-key"),
    ] {
        let serve = ["serve", "--listen", "127.0.0.1:0"];
        let (code, _, err) = crate::util::run_cli(&[&serve[..], files].concat());
        assert_eq!(code, 1, "{err}");
        assert!(err.contains(says), "{err}");
    }
}
