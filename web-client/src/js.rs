//! The JavaScript API: `new HealthClient(baseUrl, options?)` with `check`, `list` and
//! `watch`. Promises reject with a real `Error` whose `code` is the gRPC code name, so a
//! frontend branches on `err.code === "NOT_FOUND"` instead of parsing messages.

use std::{pin::Pin, rc::Rc, time::Duration};

use futures_util::future::{AbortHandle, abortable};
use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::{Error, Options, Update};

#[cfg(feature = "fetch-lite")]
use crate::fetch_lite::{Wire, wire};
#[cfg(not(feature = "fetch-lite"))]
use crate::tonic_wasm::{Wire, wire};

type Core = crate::Client<Wire>;

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
        let core = Core::new(wire(base_url), options).map_err(to_js)?;
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
            let statuses = core.list().await.map_err(to_js)?;
            let object = Object::new();
            for (name, status) in statuses {
                Reflect::set(&object, &name.into(), &status.as_str_name().into())?;
            }
            Ok(object.into())
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

/// A JavaScript `Error` named `HealthError`, with the gRPC code name in `code`.
fn to_js(error: Error) -> JsValue {
    let js = js_sys::Error::new(&error.to_string());
    js.set_name("HealthError");
    let _ = Reflect::set(&js, &"code".into(), &error.code_name().into());
    js.into()
}
