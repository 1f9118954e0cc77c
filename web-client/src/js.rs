//! The JavaScript API: `new HealthClient(baseUrl, options?)` with `check`, `list`,
//! `history`, `watch` and `watchAll`. Promises reject with a real `Error` whose `code` is the gRPC code name, so a
//! frontend branches on `err.code === "NOT_FOUND"` instead of parsing messages.

use std::{pin::Pin, rc::Rc, time::Duration};

use futures_util::future::{AbortHandle, abortable};
use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::{AllUpdate, Error, HistoryQuery, Options, Update, core::path, js_replies};

#[cfg(feature = "fetch-lite")]
use crate::fetch_lite::{Browser, browser};
#[cfg(not(feature = "fetch-lite"))]
use crate::tonic_wasm::{Browser, browser};

type Core = crate::Client<Browser>;

/// A `grpc.health.v1` client speaking gRPC-Web to `baseUrl`.
#[wasm_bindgen(skip_typescript)]
pub struct HealthClient {
    core: Rc<Core>,
}

#[wasm_bindgen]
impl HealthClient {
    /// `baseUrl` is the server's origin (`""` for the page's own); see `HealthClientOptions`.
    #[wasm_bindgen(constructor)]
    pub fn new(base_url: &str, options: Option<Object>) -> Result<HealthClient, JsValue> {
        let options = options
            .map(|o| read_options(&o))
            .transpose()?
            .unwrap_or_default();
        let core = Core::new(browser(base_url), options).map_err(to_js)?;
        Ok(Self {
            core: Rc::new(core),
        })
    }

    /// The status of `service`, `""` (the default) meaning the whole server.
    pub fn check(&self, service: Option<String>) -> Promise {
        let core = self.core.clone();
        promise(async move {
            let status = core
                .check(service.as_deref().unwrap_or(""))
                .await
                .map_err(to_js)?;
            Ok(status.as_str_name().into())
        })
    }

    /// Every service with its status, as a plain object.
    pub fn list(&self) -> Promise {
        let core = self.core.clone();
        promise(async move {
            let reply = core.unary_encoded(path::LIST, Vec::new()).await;
            reply.and_then(|r| js_replies::statuses(&r)).map_err(to_js)
        })
    }

    /// The history of `service`: its transitions, its uptime and (with `latency: true`)
    /// its probe latency; see `HistoryOptions` and `ServiceHistory` in the typings.
    pub fn history(&self, service: String, options: Option<Object>) -> Promise {
        let core = self.core.clone();
        promise(async move {
            let query = match options {
                Some(options) => read_query(&options).map_err(to_js)?,
                None => HistoryQuery::default(),
            };
            let replies = core.history_encoded(&service, &query).await;
            replies.and_then(|r| js_replies::history(&r)).map_err(to_js)
        })
    }

    /// Calls `onUpdate` with every change of `service` until the handle is closed.
    pub fn watch(&self, service: String, on_update: Function) -> WatchHandle {
        let core = self.core.clone();
        let (task, abort) = abortable(async move {
            core.watch(&service, |update| {
                // A throwing callback must not end the watch; the page would go stale.
                let _ = on_update.call1(&JsValue::UNDEFINED, &to_js_update(update));
            })
            .await
        });
        spawn(async move {
            let _ = task.await;
        });
        WatchHandle { abort }
    }

    /// Calls `onUpdate` with every message of one stream for all services (a
    /// snapshot, then the changes), reconnecting and resuming until the handle is
    /// closed; see `FleetUpdate` in the typings.
    #[wasm_bindgen(js_name = watchAll)]
    pub fn watch_all(&self, on_update: Function) -> WatchHandle {
        let core = self.core.clone();
        let (task, abort) = abortable(async move {
            core.watch_all(|update| {
                // A throwing callback must not end the stream; the page would go stale.
                let _ = on_update.call1(&JsValue::UNDEFINED, &to_js_fleet_update(update));
            })
            .await
        });
        spawn(async move {
            let _ = task.await;
        });
        WatchHandle { abort }
    }
}

/// Stops a watch started by `HealthClient.watch`.
#[wasm_bindgen(skip_typescript)]
pub struct WatchHandle {
    abort: AbortHandle,
}

#[wasm_bindgen]
impl WatchHandle {
    /// Ends the stream (aborting its `fetch`); no more updates follow. Safe to call twice.
    pub fn close(&self) {
        self.abort.abort();
    }
}

/// `future_to_promise` and `spawn_local` behind one boxed future type each, so that the
/// module holds their task machinery once rather than once per call site.
fn promise(future: impl Future<Output = Result<JsValue, JsValue>> + 'static) -> Promise {
    let future: Pin<Box<dyn Future<Output = Result<JsValue, JsValue>>>> = Box::pin(future);
    future_to_promise(future)
}

fn spawn(future: impl Future<Output = ()> + 'static) {
    let future: Pin<Box<dyn Future<Output = ()>>> = Box::pin(future);
    wasm_bindgen_futures::spawn_local(future);
}

fn read_options(object: &Object) -> Result<Options, JsValue> {
    let mut options = Options::default();
    let timeout = Reflect::get(object, &"timeoutMs".into())?;
    if let Some(ms) = timeout.as_f64() {
        if !(ms.is_finite() && ms > 0.0) {
            return Err(to_js(Error::InvalidOption(
                "timeoutMs must be a positive number".into(),
            )));
        }
        options.timeout = Some(Duration::from_millis(ms.ceil() as u64));
    }
    let headers = Reflect::get(object, &"headers".into())?;
    if let Some(headers) = headers.dyn_ref::<Object>() {
        for entry in Object::entries(headers) {
            let pair: js_sys::Array = entry.into();
            let value = pair.get(1).as_string().unwrap_or_default();
            options
                .headers
                .push((pair.get(0).as_string().unwrap_or_default(), value));
        }
    }
    Ok(options)
}

/// The options object of `history(service, options)`; absent fields are the defaults.
fn read_query(options: &Object) -> Result<HistoryQuery, Error> {
    let field = |key: &str| Reflect::get(options, &key.into()).unwrap_or_default();
    // Unix milliseconds are exact up to 2^53; the u32 fields are checked for range
    // here and for sense by the server (INVALID_ARGUMENT for a limit over 1000).
    const TIME: f64 = 9_007_199_254_740_991.0;
    const U32: f64 = u32::MAX as f64;
    let whole = |key: &str, max: f64| {
        let value = field(key);
        if value.is_undefined() || value.is_null() {
            return Ok(0.0);
        }
        // JavaScript's unary plus: a number as it is, a Date as its time.
        let n = value.unchecked_into_f64();
        if n >= 0.0 && n <= max && n.fract() == 0.0 {
            Ok(n)
        } else {
            Err(Error::InvalidOption(format!(
                "{key} must be a whole number, 0 or more"
            )))
        }
    };
    Ok(HistoryQuery {
        limit: whole("limit", U32)? as u32,
        since_unix_ms: whole("since", TIME)? as i64,
        until_unix_ms: whole("until", TIME)? as i64,
        buckets: whole("buckets", U32)? as u32,
        span_seconds: whole("spanSeconds", U32)? as u32,
        latency: field("latency").is_truthy(),
    })
}

fn to_js_update(update: Update) -> JsValue {
    let object = Object::new();
    let _ = Reflect::set(
        &object,
        &"status".into(),
        &update.status.as_str_name().into(),
    );
    let _ = Reflect::set(&object, &"state".into(), &update.state.as_str().into());
    if let Some(error) = update.error {
        let _ = Reflect::set(&object, &"error".into(), &to_js(error));
    }
    object.into()
}

fn to_js_fleet_update(update: AllUpdate) -> JsValue {
    let (object, error) = match js_replies::fleet_update(update.message.as_deref().unwrap_or(&[])) {
        Ok(object) => (object, update.error),
        Err(e) => (js_replies::fleet_update(&[]).unwrap_or_default(), Some(e)),
    };
    let _ = Reflect::set(&object, &"state".into(), &update.state.as_str().into());
    if let Some(error) = error {
        let _ = Reflect::set(&object, &"error".into(), &to_js(error));
    }
    object.into()
}

/// A JavaScript `Error` named `HealthError`, with the gRPC code name in `code`.
fn to_js(error: Error) -> JsValue {
    let js = js_sys::Error::new(&error.to_string());
    js.set_name("HealthError");
    let _ = Reflect::set(&js, &"code".into(), &error.code_name().into());
    js.into()
}
