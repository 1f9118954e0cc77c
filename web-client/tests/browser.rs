//! The JavaScript API in headless Chromium against a real `healthweb serve`, driven by
//! `tests/browser/run.sh`, which passes the server's URL at compile time (a wasm test
//! cannot read the environment when it runs):
//!
//! - `HEALTHWEB_TEST_URL`: a server with `api=SERVING` and `db=NOT_SERVING`, whose `flip`
//!   service run.sh toggles every 500 ms while the tests run (through the admin API, so
//!   its History has ADMIN transitions), and `mirror`, an upstream it monitors every
//!   200 ms (so History has its probe latency);
//! - `HEALTHWEB_TEST_HUNG_URL`: a TCP listener that accepts and never answers.
#![cfg(target_arch = "wasm32")]

use std::{cell::RefCell, rc::Rc};

use healthweb_client::js::{HealthClient, WatchHandle};
use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue, closure::Closure};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn server() -> &'static str {
    required("HEALTHWEB_TEST_URL", option_env!("HEALTHWEB_TEST_URL"))
}

/// A URL run.sh passes at build time; these tests mean nothing without it.
fn required(name: &str, value: Option<&'static str>) -> &'static str {
    match value {
        Some(url) => url,
        None => panic!("{name} was unset at build time: run tests/browser/run.sh"),
    }
}

fn client(url: &str, options: &[(&str, JsValue)]) -> HealthClient {
    let object = Object::new();
    for (key, value) in options {
        Reflect::set(&object, &(*key).into(), value).unwrap();
    }
    HealthClient::new(url, Some(object)).unwrap()
}

fn get(object: &JsValue, key: &str) -> JsValue {
    Reflect::get(object, &key.into()).unwrap()
}

/// The promise's value, or the `(code, message)` of the `Error` it rejected with.
async fn settle(promise: Promise) -> Result<JsValue, (String, String)> {
    JsFuture::from(promise).await.map_err(|err| {
        let err: js_sys::Error = err.dyn_into().expect("rejections are real Error objects");
        assert_eq!(err.name(), "HealthError");
        (get(&err, "code").as_string().unwrap(), err.message().into())
    })
}

async fn sleep(ms: i32) {
    let promise = Promise::new(&mut |resolve, _| {
        let global = js_sys::global();
        let set_timeout: Function = get(&global, "setTimeout").unchecked_into();
        set_timeout.call2(&global, &resolve, &ms.into()).unwrap();
    });
    JsFuture::from(promise).await.unwrap();
}

#[wasm_bindgen_test]
async fn check_reports_each_status() {
    let client = client(server(), &[("timeoutMs", 5000.into())]);
    assert_eq!(
        settle(client.check(Some("api".into()))).await.unwrap(),
        "SERVING"
    );
    assert_eq!(
        settle(client.check(Some("db".into()))).await.unwrap(),
        "NOT_SERVING"
    );
    assert_eq!(
        settle(client.check(None)).await.unwrap(),
        "SERVING",
        "\"\" is the whole server"
    );
}

#[wasm_bindgen_test]
async fn list_returns_every_service() {
    let statuses = settle(client(server(), &[]).list()).await.unwrap();
    assert_eq!(get(&statuses, "api"), "SERVING");
    assert_eq!(get(&statuses, "db"), "NOT_SERVING");
    assert_eq!(get(&statuses, ""), "SERVING");
}

#[wasm_bindgen_test]
async fn an_unknown_service_is_not_found_by_check_and_history() {
    let client = client(server(), &[]);
    for call in [
        client.check(Some("nope".into())),
        client.history("nope".into(), None),
    ] {
        let (code, message) = settle(call).await.unwrap_err();
        assert_eq!(code, "NOT_FOUND");
        assert!(message.contains("nope"), "{message}");
    }
}

#[wasm_bindgen_test]
async fn an_unreachable_server_is_unavailable() {
    // Port 9 (discard) has nothing listening on a test machine.
    let (code, _) = settle(client("http://127.0.0.1:9", &[]).check(None))
        .await
        .unwrap_err();
    assert_eq!(code, "UNAVAILABLE");
}

#[wasm_bindgen_test]
async fn a_hung_server_hits_the_deadline() {
    let hung = required(
        "HEALTHWEB_TEST_HUNG_URL",
        option_env!("HEALTHWEB_TEST_HUNG_URL"),
    );
    let client = client(hung, &[("timeoutMs", 300.into())]);
    let started = js_sys::Date::now();
    let (code, _) = settle(client.check(None)).await.unwrap_err();
    assert_eq!(code, "DEADLINE_EXCEEDED");
    let waited = js_sys::Date::now() - started;
    assert!(
        (300.0..3000.0).contains(&waited),
        "gave up after {waited} ms"
    );
}

#[wasm_bindgen_test]
async fn a_bad_header_is_rejected_at_once() {
    let headers = Object::new();
    Reflect::set(&headers, &"bad header".into(), &"x".into()).unwrap();
    let options = Object::new();
    Reflect::set(&options, &"headers".into(), &headers).unwrap();
    let err = HealthClient::new(server(), Some(options))
        .err()
        .expect("a space is no header name");
    assert_eq!(get(&err, "code"), "INVALID_ARGUMENT");
}

/// Watches `service` for `ms`, returning every `(status, state)` reported.
async fn watch_for(service: &str, ms: i32) -> Vec<(String, String)> {
    let (seen, _handle) = start_watch(service);
    sleep(ms).await;
    seen.take()
}

type Updates = Rc<RefCell<Vec<(String, String)>>>;

/// Starts a Watch whose updates (status, state) collect in the returned list.
fn start_watch(service: &str) -> (Updates, WatchHandle) {
    let seen = Updates::default();
    let sink = seen.clone();
    let on_update = Closure::<dyn FnMut(JsValue)>::new(move |update: JsValue| {
        let field = |key| get(&update, key).as_string().unwrap();
        sink.borrow_mut().push((field("status"), field("state")));
    });
    let on_update: Function = on_update.into_js_value().unchecked_into();
    let handle = client(server(), &[]).watch(service.into(), on_update);
    (seen, handle)
}

#[wasm_bindgen_test]
async fn watch_follows_changes_live() {
    let seen = watch_for("flip", 3000).await;
    assert!(seen.iter().all(|(_, state)| state == "live"), "{seen:?}");
    for status in ["SERVING", "NOT_SERVING"] {
        assert!(
            seen.iter().any(|(s, _)| s == status),
            "never saw {status}: {seen:?}"
        );
    }
    assert!(
        seen.len() >= 4,
        "the toggle runs every 500 ms, saw {seen:?}"
    );
}

#[wasm_bindgen_test]
async fn watch_reports_an_unknown_service_and_stays_open() {
    let seen = watch_for("nope", 1000).await;
    assert_eq!(seen, [("SERVICE_UNKNOWN".to_owned(), "live".to_owned())]);
}

#[wasm_bindgen_test]
async fn close_ends_a_watch() {
    let (seen, handle) = start_watch("flip");
    for _ in 0..100 {
        if !seen.borrow().is_empty() {
            break;
        }
        sleep(20).await;
    }
    // The toggle may land in the same poll as the first update: count what close() saw.
    let at_close = seen.borrow().len();
    assert!(at_close >= 1, "no update within 2 s");
    handle.close();
    handle.close();
    // Three toggles of the 500 ms flip would arrive in this time were the stream still open.
    sleep(1500).await;
    assert_eq!(
        seen.borrow().len(),
        at_close,
        "updates after close(): {:?}",
        seen.borrow()
    );
}

#[wasm_bindgen_test]
async fn a_hung_server_fails_each_watch_attempt_at_the_deadline() {
    let hung = required(
        "HEALTHWEB_TEST_HUNG_URL",
        option_env!("HEALTHWEB_TEST_HUNG_URL"),
    );
    let seen = Rc::new(RefCell::new(Vec::new()));
    let sink = seen.clone();
    let on_update = Closure::<dyn FnMut(JsValue)>::new(move |update: JsValue| {
        let error = get(&update, "error");
        let code = get(&error, "code").as_string().unwrap_or_default();
        let state = get(&update, "state").as_string().unwrap();
        sink.borrow_mut().push((state, code, js_sys::Date::now()));
    });
    let on_update: Function = on_update.into_js_value().unchecked_into();
    let started = js_sys::Date::now();
    let handle = client(hung, &[("timeoutMs", 300.into())]).watch("api".into(), on_update);
    // The first attempt gives up at 300 ms; the slack is for a busy machine.
    for _ in 0..150 {
        if !seen.borrow().is_empty() {
            break;
        }
        sleep(20).await;
    }
    handle.close();
    let seen = seen.take();
    let Some((state, code, at)) = seen.first().cloned() else {
        panic!("no update within 3 s of watching a server that never answers");
    };
    assert_eq!(
        (state.as_str(), code.as_str()),
        ("reconnecting", "DEADLINE_EXCEEDED")
    );
    let waited = at - started;
    assert!(
        (300.0..3000.0).contains(&waited),
        "gave up after {waited} ms"
    );
}

fn history_options(options: &[(&str, JsValue)]) -> Option<Object> {
    let object = Object::new();
    for (key, value) in options {
        Reflect::set(&object, &(*key).into(), value).unwrap();
    }
    Some(object)
}

fn number(object: &JsValue, key: &str) -> f64 {
    let value = get(object, key);
    value
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number: {value:?}"))
}

fn array(object: &JsValue, key: &str) -> js_sys::Array {
    let value = get(object, key);
    assert!(js_sys::Array::is_array(&value), "{key} is not an array");
    value.unchecked_into()
}

fn is_status(value: &JsValue) -> bool {
    let statuses = ["SERVING", "NOT_SERVING", "UNKNOWN", "SERVICE_UNKNOWN"];
    value
        .as_string()
        .is_some_and(|s| statuses.contains(&s.as_str()))
}

/// `flip`'s history, asked with `options` once it holds at least three transitions: flip
/// changes every 500 ms and History writes once a second, so the first test to ask may be
/// early.
async fn flip_history(client: &HealthClient, options: Option<Object>) -> JsValue {
    for _ in 0..50 {
        let everything = settle(client.history("flip".into(), None)).await.unwrap();
        if array(&everything, "transitions").length() >= 3 {
            return settle(client.history("flip".into(), options))
                .await
                .unwrap();
        }
        sleep(100).await;
    }
    panic!("flip had fewer than 3 transitions after 5 s");
}

/// Every field the typings promise, with its type, on `flip`'s history: the admin API's
/// changes (cause ADMIN), newest first, and a bar of 48 buckets by default.
#[wasm_bindgen_test]
async fn history_has_transitions_and_uptime_as_typed() {
    let client = client(server(), &[("timeoutMs", 5000.into())]);
    let history = flip_history(&client, None).await;
    let transitions = array(&history, "transitions");
    let mut previous = f64::INFINITY;
    for transition in transitions.iter() {
        let at = number(&transition, "atUnixMs");
        assert!(at <= previous, "newest first");
        previous = at;
        assert!(at > 1.6e12 && at <= js_sys::Date::now() + 1000.0, "at {at}");
        for key in ["from", "to", "worst"] {
            assert!(is_status(&get(&transition, key)), "{key}");
        }
        assert!(get(&transition, "detail").is_string());
        assert!(number(&transition, "count") >= 1.0);
        assert!(number(&transition, "untilUnixMs") >= at);
        let replica = get(&transition, "replica").as_string().unwrap_or_default();
        assert!(!replica.is_empty(), "the replica that saw it");
    }
    let newest = transitions.get(0);
    assert_eq!(get(&newest, "cause"), "ADMIN");
    assert_ne!(get(&newest, "from"), get(&newest, "to"));
    assert!(get(&history, "truncated").as_bool().is_some());
    assert_eq!(array(&history, "latency").length(), 0, "not asked for");

    let uptime = get(&history, "uptime");
    for window in ["day", "week", "month"] {
        let window = get(&uptime, window);
        let serving = number(&window, "serving");
        assert!((0.0..=1.0).contains(&serving), "{serving}");
        assert!(number(&window, "recordedMs") > 0.0);
    }
    assert!(is_status(&get(&uptime, "current")));
    assert!(number(&uptime, "recordedSinceUnixMs") <= js_sys::Date::now());
    let buckets = array(&uptime, "buckets");
    assert_eq!(buckets.length(), 48);
    let last = buckets.get(47);
    assert!(number(&last, "endUnixMs") > number(&last, "startUnixMs"));
    assert!(
        number(&last, "changes") >= 1.0,
        "flip changed in the last half hour"
    );
    assert_eq!(get(&last, "worst"), "NOT_SERVING");
    assert!((0.0..=1.0).contains(&number(&last, "serving")));
    let first = buckets.get(0);
    assert_eq!(
        get(&first, "worst"),
        "SERVICE_UNKNOWN",
        "nothing recorded then"
    );
}

#[wasm_bindgen_test]
async fn history_options_shape_the_answer() {
    let client = client(server(), &[]);
    let options = history_options(&[("limit", 2.into()), ("buckets", 4.into())]);
    let history = flip_history(&client, options).await;
    assert_eq!(array(&history, "transitions").length(), 2);
    assert_eq!(get(&history, "truncated"), true);
    assert_eq!(array(&get(&history, "uptime"), "buckets").length(), 4);

    // A Date works as `since`: nothing changed after a minute from now.
    let later = js_sys::Date::new(&(js_sys::Date::now() + 60_000.0).into());
    let options = history_options(&[("since", later.into())]);
    let history = settle(client.history("flip".into(), options))
        .await
        .unwrap();
    assert_eq!(array(&history, "transitions").length(), 0);
}

#[wasm_bindgen_test]
async fn history_has_latency_for_a_monitored_upstream() {
    let client = client(server(), &[]);
    let options = || history_options(&[("latency", true.into())]);
    let mut minutes = js_sys::Array::new();
    // The monitor probes every 200 ms; History writes once a second.
    for _ in 0..50 {
        let history = settle(client.history("mirror".into(), options()))
            .await
            .unwrap();
        minutes = array(&history, "latency");
        if minutes.length() > 0 {
            break;
        }
        sleep(100).await;
    }
    let last = minutes
        .length()
        .checked_sub(1)
        .expect("no latency within 5 s");
    let minute = minutes.get(last);
    assert!(number(&minute, "probes") >= 1.0);
    assert_eq!(number(&minute, "startUnixMs") % 60_000.0, 0.0);
    let (p50, p99, max) = (
        number(&minute, "p50Ms"),
        number(&minute, "p99Ms"),
        number(&minute, "maxMs"),
    );
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{p50} {p99} {max}");
}

#[wasm_bindgen_test]
async fn a_bad_history_option_is_invalid_argument() {
    let client = client(server(), &[]);
    // Refused by the server (over its limits), and by the client (not a count at all).
    for (key, value) in [
        ("limit", JsValue::from(5000)),
        ("spanSeconds", JsValue::from(31 * 86_400)),
        ("limit", JsValue::from(-1)),
        ("buckets", JsValue::from(1.5)),
        ("since", JsValue::from("yesterday")),
    ] {
        let options = history_options(&[(key, value.clone())]);
        let (code, message) = settle(client.history("api".into(), options))
            .await
            .unwrap_err();
        assert_eq!(code, "INVALID_ARGUMENT", "{key}: {value:?}: {message}");
    }
}
