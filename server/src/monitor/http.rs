//! The plain HTTP probe of `protocol = "http"` upstreams: a GET through the same
//! dialer and TLS settings as the gRPC wires; any 2xx is healthy. Only the status
//! line is read.

use std::time::Duration;

use bytes::Bytes;
use healthweb_client::native::{self, HttpClient, Target};
use http::{Request, Uri, header::USER_AGENT, uri::Scheme};

/// A GET of one URL, again and again.
pub struct HttpProbe {
    client: HttpClient,
    uri: Uri,
    user_agent: Option<String>,
}

impl HttpProbe {
    /// Probes `path` on `target` (whose wire must be an HTTP/1.1 one).
    pub fn new(target: &Target, path: &str) -> Result<Self, String> {
        let uri: Uri = format!("{}{path}", target.url.trim_end_matches('/'))
            .parse()
            .map_err(|e| format!("bad address {:?}: {e}", target.url))?;
        let client = native::http_client(target, uri.scheme() == Some(&Scheme::HTTPS))
            .map_err(|e| e.to_string())?;
        Ok(Self {
            client,
            uri,
            user_agent: target.user_agent.clone(),
        })
    }

    /// The status code of one GET, within `timeout`.
    pub async fn status(&self, timeout: Duration) -> Result<u16, String> {
        let mut request = Request::get(self.uri.clone());
        if let Some(agent) = &self.user_agent {
            request = request.header(USER_AGENT, agent);
        }
        let request = request
            .body(native::full_body(Bytes::new()))
            .map_err(|e| e.to_string())?;
        match tokio::time::timeout(timeout, self.client.request(request)).await {
            Ok(Ok(response)) => Ok(response.status().as_u16()),
            Ok(Err(error)) => Err(native::error_chain(&error)),
            Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
        }
    }
}
