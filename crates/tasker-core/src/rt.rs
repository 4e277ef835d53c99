//! What the worker session needs from an executor: spawning its background work, sleeping, and a monotonic
//! instant. With `runtime` that is Tokio's (whose clock tests can pause); with `local` alone (wasm32, no
//! threads) background work runs as local tasks on the JS event loop and waits use the JS timers.

#[cfg(feature = "runtime")]
pub(crate) use tokio::time::{sleep, Instant};

#[cfg(feature = "runtime")]
pub(crate) fn spawn<F>(fut: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    tokio::spawn(fut);
}

#[cfg(all(feature = "local", not(feature = "runtime")))]
pub(crate) use web_time::Instant;

#[cfg(all(feature = "local", not(feature = "runtime")))]
pub(crate) async fn sleep(d: std::time::Duration) {
    gloo_timers::future::sleep(d).await
}

#[cfg(all(feature = "local", not(feature = "runtime")))]
pub(crate) fn spawn<F>(fut: F)
where
    F: std::future::Future<Output = ()> + 'static,
{
    wasm_bindgen_futures::spawn_local(fut);
}
