//! The one Tokio runtime of the process, shared by every client, session and subscription (feature
//! `native`).
//!
//! Host code never runs here: Rust never calls into Ruby, Python, JS or the JVM from one of these threads.
//! Blocking calls ([`block_on`]) drive their future from the host's calling thread, which the binding has
//! released from its interpreter lock; async calls ([`spawn`]) run on the runtime's workers and hand back a
//! future any executor (napi's included) can await. Either way a panic comes back as an `internal` error.
//!
//! Without `native` there is no runtime and no blocking form: [`spawn`] awaits its future in place, on the
//! caller's executor (a browser's event loop, say), still turning a panic into an `internal` error.

use std::future::Future;
use std::panic::AssertUnwindSafe;
#[cfg(feature = "native")]
use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
#[cfg(feature = "native")]
use std::sync::Mutex;

#[cfg(feature = "native")]
use tokio::runtime::{Builder, Runtime};

use crate::error::{FfiError, FfiResult};

/// The runtime of this process and the pid that started it. A forked child finds the parent's pid here and
/// starts its own runtime: the parent's is inherited as memory without any of its threads, so it could never
/// run anything. The parent's is leaked in the child, never dropped (dropping it would wait for threads that
/// do not exist there).
#[cfg(feature = "native")]
static RUNTIME: AtomicPtr<Runtime> = AtomicPtr::new(std::ptr::null_mut());
#[cfg(feature = "native")]
static RUNTIME_PID: AtomicU32 = AtomicU32::new(0);
/// Serialises starting a runtime; never held while one is used.
#[cfg(feature = "native")]
static STARTING: Mutex<()> = Mutex::new(());

/// How many worker threads the runtime gets: `TASKER_FFI_WORKER_THREADS` if set, else the number of CPUs
/// capped at 4, since the work here is waiting on a database, not computing.
#[cfg(feature = "native")]
fn worker_threads() -> usize {
    std::env::var("TASKER_FFI_WORKER_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()).min(4))
}

/// The shared runtime, started on first use in each process.
///
/// A forked child (Puma, Unicorn, Gunicorn `--preload`, Resque, `multiprocessing` with fork) starts a runtime of
/// its own on first use, so it can open clients and run workers; a client opened before the fork stays refused
/// there (see `Client`), since its connections belong to the parent.
#[cfg(feature = "native")]
pub fn runtime() -> FfiResult<&'static Runtime> {
    let pid = std::process::id();
    let current = RUNTIME.load(Ordering::Acquire);
    if !current.is_null() && RUNTIME_PID.load(Ordering::Acquire) == pid {
        return Ok(leaked(current));
    }
    let _starting = STARTING.lock().unwrap_or_else(|p| p.into_inner());
    let current = RUNTIME.load(Ordering::Acquire);
    if !current.is_null() && RUNTIME_PID.load(Ordering::Acquire) == pid {
        return Ok(leaked(current));
    }
    let runtime = Builder::new_multi_thread()
        .worker_threads(worker_threads())
        .thread_name("tasker-ffi")
        .enable_all()
        .build()
        .map_err(|e| FfiError::internal(format!("starting the tasker runtime failed: {e}")))?;
    let runtime: &'static mut Runtime = Box::leak(Box::new(runtime));
    // The pid is written before the pointer is published, and read after it, so a reader that sees this
    // process's pointer also sees this process's pid.
    RUNTIME_PID.store(pid, Ordering::Release);
    RUNTIME.store(runtime, Ordering::Release);
    Ok(runtime)
}

/// The runtime a non-null pointer read from [`RUNTIME`] points to.
#[cfg(feature = "native")]
#[allow(unsafe_code)]
fn leaked(p: *mut Runtime) -> &'static Runtime {
    // SAFETY: every pointer stored in RUNTIME comes from `Box::leak` in `runtime()`: it is non-null, aligned,
    // points to an initialised Runtime that is never freed or mutated through it, and only shared references
    // are ever made from it. Atomics (not a lock) publish it, so a fork at any moment leaves a usable value.
    unsafe { &*p }
}

/// Runs `fut` to completion on the calling thread, with the shared runtime's reactor and timers.
///
/// Refused from inside an async runtime (where blocking would stall the executor; use the `_async` variant),
/// and a panic becomes an `internal` error.
#[cfg(feature = "native")]
pub fn block_on<T>(fut: impl Future<Output = FfiResult<T>>) -> FfiResult<T> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(FfiError::configuration(
            "a blocking tasker call was made from inside an async runtime; use the _async variant there",
        ));
    }
    let rt = runtime()?;
    match std::panic::catch_unwind(AssertUnwindSafe(|| rt.block_on(fut))) {
        Ok(r) => r,
        Err(payload) => Err(FfiError::from_panic(payload.as_ref())),
    }
}

/// Runs `fut` on the shared runtime and returns its result; awaitable from any executor.
///
/// The work continues to completion even if the returned future is dropped, as a database call in flight
/// should; callers that must undo something when the result is not collected do so in `fut` itself.
#[cfg(feature = "native")]
pub async fn spawn<T, F>(fut: F) -> FfiResult<T>
where
    T: Send + 'static,
    F: Future<Output = FfiResult<T>> + Send + 'static,
{
    let handle = runtime()?.spawn(fut);
    match handle.await {
        Ok(r) => r,
        Err(e) if e.is_panic() => Err(FfiError::from_panic(e.into_panic().as_ref())),
        Err(e) => Err(FfiError::internal(format!("tasker task was cancelled: {e}"))),
    }
}

/// Without `native`: awaits `fut` in place, on the caller's executor; a panic becomes an `internal` error.
/// Dropping the returned future drops `fut` with it.
/// Nothing crosses a thread here, so `fut` need not be `Send`: on wasm32 the session's waits are JS timers,
/// which are not.
#[cfg(not(feature = "native"))]
pub async fn spawn<T, F>(fut: F) -> FfiResult<T>
where
    F: Future<Output = FfiResult<T>>,
{
    catch_panic(fut).await
}

/// Awaits `fut` where it is, turning a panic in any of its polls into an `internal` error.
#[cfg(any(test, not(feature = "native")))]
async fn catch_panic<T>(fut: impl Future<Output = FfiResult<T>>) -> FfiResult<T> {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(
        move |cx| match std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(poll) => poll,
            Err(payload) => std::task::Poll::Ready(Err(FfiError::from_panic(payload.as_ref()))),
        },
    )
    .await
}

/// Starts `fut` on the shared runtime in the background.
#[cfg(feature = "native")]
pub(crate) fn spawn_background<F>(fut: F) -> FfiResult<tokio::task::JoinHandle<()>>
where
    F: Future<Output = ()> + Send + 'static,
{
    Ok(runtime()?.spawn(fut))
}

/// Runs a synchronous closure, turning a panic into an `internal` error; for the non-async calls that do
/// no waiting (`try_next`, `advance_clock_ms`, …).
pub fn guard<T>(f: impl FnOnce() -> FfiResult<T>) -> FfiResult<T> {
    match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => Err(FfiError::from_panic(payload.as_ref())),
    }
}

/// Drives `fut` on the calling thread with no runtime at all, parking between polls, as a browser's event
/// loop or any foreign executor would; for tests of the calls that must not need the shared runtime.
#[cfg(test)]
pub(crate) fn run_in_place<F: Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let std::task::Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

#[cfg(all(test, feature = "native"))]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn awaiting_in_place_returns_the_value_and_turns_a_panic_into_internal() {
        assert_eq!(block_on(catch_panic(async { Ok(7) })).unwrap(), 7);
        let e = block_on(catch_panic::<()>(async {
            tokio::task::yield_now().await;
            panic!("exploded after a pending poll")
        }))
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Internal);
        assert!(e.message.contains("exploded after a pending poll"), "{}", e.message);
    }

    #[test]
    fn block_on_returns_the_value() {
        assert_eq!(block_on(async { Ok(41 + 1) }).unwrap(), 42);
    }

    #[test]
    fn a_panic_in_block_on_becomes_internal() {
        let e = block_on::<()>(async { panic!("exploded in a blocking call") }).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Internal);
        assert!(e.message.contains("exploded in a blocking call"), "{}", e.message);
    }

    #[test]
    fn a_panic_in_a_spawned_call_becomes_internal() {
        let e = block_on(spawn::<(), _>(async { panic!("exploded on the runtime") })).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Internal);
        assert!(e.message.contains("exploded on the runtime"), "{}", e.message);
    }

    #[test]
    fn a_panic_in_a_guarded_closure_becomes_internal() {
        let e = guard::<()>(|| panic!("sync boom")).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Internal);
    }

    #[test]
    fn every_client_shares_one_runtime() {
        let a = runtime().unwrap() as *const Runtime;
        let b = std::thread::spawn(|| runtime().unwrap() as *const Runtime as usize)
            .join()
            .unwrap();
        assert_eq!(a as usize, b);
    }

    #[test]
    fn blocking_inside_a_runtime_is_refused_not_a_crash() {
        let e = block_on(spawn(async { block_on(async { Ok(1) }) })).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Configuration);
        assert!(e.message.contains("_async"), "{}", e.message);
    }

    #[test]
    fn spawned_work_runs_on_the_runtime_threads() {
        let name = block_on(spawn(async { Ok(std::thread::current().name().map(str::to_string)) })).unwrap();
        assert_eq!(name.as_deref(), Some("tasker-ffi"));
    }
}
