//! What the core needs from the platform it runs on: a timer and a random number for
//! backoff jitter.

use std::time::Duration;

#[cfg(target_arch = "wasm32")]
mod platform {
    use std::time::Duration;

    use js_sys::{Function, Promise};
    use wasm_bindgen::prelude::*;

    #[wasm_bindgen]
    extern "C" {
        // `globalThis.setTimeout`, so the client also runs in workers, not only windows.
        #[wasm_bindgen(js_name = setTimeout)]
        fn set_timeout(callback: &Function, ms: f64) -> JsValue;
    }

    pub async fn sleep(duration: Duration) {
        // Not `as_millis()`: its u128 would bring 128-bit arithmetic into the module.
        let ms = duration.as_secs_f64() * 1000.0;
        let promise = Promise::new(&mut |resolve, _| {
            set_timeout(&resolve, ms);
        });
        // The promise only ever resolves.
        let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
    }

    pub fn random() -> f64 {
        js_sys::Math::random()
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod platform {
    use std::{
        hash::{BuildHasher, RandomState},
        time::Duration,
    };

    pub async fn sleep(duration: Duration) {
        tokio::time::sleep(duration).await;
    }

    /// Jitter needs no cryptographic quality: std's per-process random hash keys will do.
    pub fn random() -> f64 {
        let bits = RandomState::new().hash_one(std::time::SystemTime::now());
        (bits >> 11) as f64 / (1u64 << 53) as f64
    }
}

pub use platform::{random, sleep};

/// Waits for `future` at most `limit`; the loser is dropped, which in the browser aborts
/// the `fetch`.
pub async fn within<F: std::future::Future>(limit: Duration, future: F) -> Option<F::Output> {
    use futures_util::future::{Either, select};
    match select(std::pin::pin!(future), std::pin::pin!(sleep(limit))).await {
        Either::Left((output, _)) => Some(output),
        Either::Right(((), _)) => None,
    }
}
