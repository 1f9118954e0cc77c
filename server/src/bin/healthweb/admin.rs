//! `healthweb set` and `healthweb remove`: the admin API's command-line client.

use std::{path::PathBuf, time::Duration};

use bytes::Bytes;
use clap::Args;
use healthweb_client::native::{self, Protocol, Target, TlsSettings};
use healthweb_server::status::StatusWord;
use http_body_util::BodyExt;

use crate::{exit::Exit, say};

/// Where the admin API is, and how to get in.
#[derive(Args)]
pub struct Admin {
    /// The admin API's address (healthweb serve --admin-listen).
    #[arg(long, env = "HEALTHWEB_ADMIN", value_name = "ADDR")]
    admin: String,
    /// The file holding the admin token (healthweb serve --admin-token-file).
    #[arg(long, env = "HEALTHWEB_ADMIN_TOKEN_FILE", value_name = "FILE")]
    admin_token_file: Option<PathBuf>,
    /// How long the whole call may take: connecting, the answer and its body; past
    /// it, exit 2.
    #[arg(long, env = "HEALTHWEB_ADMIN_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

#[derive(Args)]
pub struct SetArgs {
    #[command(flatten)]
    admin: Admin,
    /// The service; "" is the whole server.
    name: String,
    /// SERVING, NOT_SERVING or UNKNOWN.
    status: StatusWord,
}

#[derive(Args)]
pub struct RemoveArgs {
    #[command(flatten)]
    admin: Admin,
    /// The service.
    name: String,
}

pub async fn set(args: SetArgs) -> Exit {
    report(call(&args.admin, &args.name, Some(args.status)).await)
}

pub async fn remove(args: RemoveArgs) -> Exit {
    report(call(&args.admin, &args.name, None).await)
}

fn report(result: Result<String, AdminError>) -> Exit {
    match result {
        Err(error @ AdminError::Token { .. }) => {
            say(format_args!("healthweb: {error}"));
            Exit::BadArguments
        }
        Ok(text) => {
            println!("{text}");
            Exit::Success
        }
        // A timeout too: it runs from the dial, so it cannot tell a host that never
        // answered the dial from a server that never answered the request.
        Err(error @ (AdminError::Connect { .. } | AdminError::Timeout { .. })) => {
            say(format_args!("healthweb: {error}"));
            Exit::ConnectionFailure
        }
        Err(error) => {
            say(format_args!("healthweb: the server refused: {error}"));
            Exit::RpcFailure
        }
    }
}

/// A failed admin call.
#[derive(Debug, thiserror::Error)]
enum AdminError {
    /// The admin listener could not be reached.
    #[error(
        "cannot reach the admin API at {addr}: {source} (is `healthweb serve --admin-listen {addr}` running?)"
    )]
    Connect {
        addr: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// No whole answer within the timeout, the dial included.
    #[error("no answer from the admin API at {addr} within {} (--timeout)", humantime::format_duration(*.after))]
    Timeout { addr: String, after: Duration },
    /// The server refused the change; the message is the server's.
    #[error("{0}")]
    Refused(String),
    /// The token file cannot be read.
    #[error("cannot read --admin-token-file {path}: {source}")]
    Token {
        path: String,
        source: std::io::Error,
    },
}

/// Sends one admin request: `PUT` to set `name` to `status`, `DELETE` to remove it,
/// as JSON (the admin API takes changes in no other form) with the token, if any.
async fn call(admin: &Admin, name: &str, status: Option<StatusWord>) -> Result<String, AdminError> {
    let addr = admin
        .admin
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("name", name)
        .finish();
    let (method, body) = match status {
        Some(status) => (
            http::Method::PUT,
            Bytes::from(serde_json::json!({ "status": status.to_string() }).to_string()),
        ),
        None => (http::Method::DELETE, Bytes::new()),
    };
    let mut request = http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}/services?{query}"))
        .header(http::header::CONTENT_TYPE, "application/json");
    if let Some(path) = &admin.admin_token_file {
        let text = std::fs::read_to_string(path).map_err(|source| AdminError::Token {
            path: path.display().to_string(),
            source,
        })?;
        let token = text.lines().next().unwrap_or("").trim();
        request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = request
        .body(native::full_body(body))
        .map_err(|e| AdminError::Refused(e.to_string()))?;
    let target = Target {
        url: format!("http://{addr}"),
        protocol: Protocol::GrpcWeb,
        tls: TlsSettings::default(),
        connect_timeout: admin.timeout,
        user_agent: None,
        gzip: false,
    };
    let client =
        native::http_client(&target, false).map_err(|e| AdminError::Refused(e.to_string()))?;
    let connect = |source: Box<dyn std::error::Error + Send + Sync>| AdminError::Connect {
        addr: addr.clone(),
        source: native::error_chain(&*source).into(),
    };
    let exchange = async {
        let response = client
            .request(request)
            .await
            .map_err(|e| connect(e.into()))?;
        let ok = response.status().is_success();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| connect(e.into()))?
            .to_bytes();
        Ok((ok, body))
    };
    let (ok, body) = tokio::time::timeout(admin.timeout, exchange)
        .await
        .map_err(|_| AdminError::Timeout {
            addr: addr.clone(),
            after: admin.timeout,
        })??;
    let text = String::from_utf8_lossy(&body).trim_end().to_owned();
    if ok {
        Ok(text)
    } else {
        Err(AdminError::Refused(text))
    }
}
