//! `healthweb set` and `healthweb remove`: the admin API's command-line client.

use bytes::Bytes;
use clap::Args;
use healthweb_server::status::StatusWord;
use http_body_util::{BodyExt, Full};
use hyper_util::{client::legacy::Client, rt::TokioExecutor};

use crate::{exit::Exit, say};

#[derive(Args)]
pub struct SetArgs {
    /// The admin API's address (healthweb serve --admin-listen).
    #[arg(long, env = "HEALTHWEB_ADMIN", value_name = "ADDR")]
    admin: String,
    /// The service; "" is the whole server.
    name: String,
    /// SERVING, NOT_SERVING or UNKNOWN.
    status: StatusWord,
}

#[derive(Args)]
pub struct RemoveArgs {
    /// The admin API's address (healthweb serve --admin-listen).
    #[arg(long, env = "HEALTHWEB_ADMIN", value_name = "ADDR")]
    admin: String,
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
        Ok(text) => {
            println!("{text}");
            Exit::Success
        }
        Err(error @ AdminError::Connect { .. }) => {
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
    /// The server refused the change; the message is the server's.
    #[error("{0}")]
    Refused(String),
}

/// Sends one admin request: `PUT` to set `name` to `status`, `DELETE` to remove it.
async fn call(admin: &str, name: &str, status: Option<StatusWord>) -> Result<String, AdminError> {
    let addr = admin
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("name", name)
        .finish();
    let (method, body) = match status {
        Some(status) => (http::Method::PUT, Bytes::from(status.to_string())),
        None => (http::Method::DELETE, Bytes::new()),
    };
    let request = http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}/services?{query}"))
        .body(Full::new(body))
        .map_err(|e| AdminError::Refused(e.to_string()))?;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let connect = |source: Box<dyn std::error::Error + Send + Sync>| AdminError::Connect {
        addr: addr.clone(),
        source,
    };
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
    let text = String::from_utf8_lossy(&body).trim_end().to_owned();
    if ok {
        Ok(text)
    } else {
        Err(AdminError::Refused(text))
    }
}
