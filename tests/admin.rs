//! The admin API and `healthweb set` / `healthweb remove` against the real binary.

use healthweb_proto::pb::health_check_response::ServingStatus;
use http::Method;

use crate::util::{Binary, Http, client, raw, req, run_cli, status_of};

#[tokio::test]
async fn set_and_remove_through_the_cli() {
    let server = Binary::serve(&["--admin-listen", "127.0.0.1:0"]);
    let admin = server.admin.unwrap().to_string();
    let mut client = client(&server.url()).await;

    let (code, out, err) = run_cli(&["set", "--admin", &admin, "payments", "NOT_SERVING"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "\"payments\" is NOT_SERVING\n");
    let got = client.check(req("payments")).await.unwrap().into_inner();
    assert_eq!(status_of(got.status), ServingStatus::NotServing);

    // Draining the whole server, as Envoy's /healthcheck/fail.
    let (code, _, _) = run_cli(&["set", "--admin", &admin, "", "NOT_SERVING"]);
    assert_eq!(code, 0);
    let got = client.check(req("")).await.unwrap().into_inner();
    assert_eq!(status_of(got.status), ServingStatus::NotServing);

    let (code, out, _) = run_cli(&["remove", "--admin", &admin, "payments"]);
    assert_eq!((code, out.as_str()), (0, "\"payments\" removed\n"));
    assert_eq!(
        client.check(req("payments")).await.unwrap_err().code(),
        tonic::Code::NotFound
    );

    let (code, _, err) = run_cli(&["remove", "--admin", &admin, "payments"]);
    assert_eq!(code, 3);
    assert!(err.contains("unknown service \"payments\""), "{err}");
    let (code, _, err) = run_cli(&["set", "--admin", &admin, "payments", "HEALTHY"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("expected SERVING, NOT_SERVING or UNKNOWN"),
        "{err}"
    );
}

#[tokio::test]
async fn an_unknown_status_word_is_a_400_listing_the_words() {
    let server = Binary::serve(&["--admin-listen", "127.0.0.1:0"]);
    let url = format!("http://{}/services?name=payments", server.admin.unwrap());
    let json = [("content-type", "application/json")];
    let r = raw(Http::H1, &url, Method::PUT, &json, r#""HEALTHY""#).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        String::from_utf8_lossy(&r.body),
        "unknown status \"HEALTHY\": expected SERVING, NOT_SERVING or UNKNOWN\n"
    );
    let list = raw(
        Http::H1,
        &format!("http://{}/services", server.admin.unwrap()),
        Method::GET,
        &[],
        "",
    )
    .await;
    assert_eq!(
        String::from_utf8_lossy(&list.body),
        r#"{"services":{"":"SERVING"},"shut_down":false,"watchers":{}}"#
    );
}

#[test]
fn the_admin_api_is_off_the_network_unless_asked() {
    let (code, _, err) = run_cli(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "0.0.0.0:0",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("--admin-allow-remote"), "{err}");
}

#[test]
fn set_without_a_server_is_a_connection_failure() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (code, _, err) = run_cli(&["set", "--admin", &port.to_string(), "a", "SERVING"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot reach the admin API"), "{err}");
}

/// An address that takes the connection and never answers (a hung server, or no
/// HTTP at all there) ends the call at `--timeout` with exit 2, naming the flag.
#[test]
fn set_against_a_silent_server_ends_at_the_timeout() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let (code, _, err) = run_cli(&[
        "set",
        "--admin",
        &addr,
        "--timeout",
        "300ms",
        "a",
        "SERVING",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!(
            "no answer from the admin API at {addr} within 300ms (--timeout)"
        )),
        "{err}"
    );
    drop(silent);
}
