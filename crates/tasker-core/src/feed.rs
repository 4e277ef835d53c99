//! The event feed: how subscriptions hear the commits of every process that shares a store.
//!
//! One reader per engine (shared with the engines [`crate::Engine::reopen`] makes from it) reads the
//! transition rows committed since its cursor ([`Store::feed_read`]) and publishes them on the event bus in
//! [`crate::events::order`]. It runs only while a subscription is open: the first subscription starts it, the
//! last one to go (or closing the engine) stops it, so a process with no subscriber pays nothing.
//!
//! It reads every [`POLL_INTERVAL`], and at once when a commit of this process asks it to. A local commit
//! waits (at most [`COMMIT_WAIT`]) until a read that began after it has published, so that, as on the memory
//! store, an operation's events are in every subscription's buffer when the operation returns. A store
//! error is retried with backoff and never loses the cursor: the rows stay in the tables, and the next read
//! that succeeds returns them. The cursor also outlives a close of the engine's store while subscriptions
//! stay open, so the reader that a reopen restarts carries on where the old one stopped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::{broadcast, watch, Notify};
use tokio::task::JoinHandle;

use crate::events::{order, Event};
use crate::store::{FeedCursor, Store};

/// How often the reader looks for other processes' commits while someone subscribes: the latency bound of
/// a remote event, plus the read itself.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// The longest a local commit waits for its events to be published, and a write for the reader's first
/// position. Only a store that fails or hangs makes them wait that long; the events still come, later.
const COMMIT_WAIT: Duration = Duration::from_secs(5);

const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

pub(crate) struct Feed {
    /// Weak, so that the feed (which every subscription keeps alive) does not keep the bus open after the
    /// engine is gone: subscriptions then end as they do on the memory store.
    events: broadcast::WeakSender<Event>,
    runtime: Handle,
    state: Mutex<State>,
    /// Asks the reader to read now.
    nudge: Notify,
    /// Reads begun, and reads finished (published, or failed), counted from 1.
    begun: AtomicU64,
    finished: watch::Sender<u64>,
    /// Whether the running reader has its first position.
    positioned: watch::Sender<bool>,
}

struct State {
    /// The store the reader reads: the newest engine's, after a reopen.
    store: Arc<dyn Store>,
    subscribers: usize,
    reader: Option<JoinHandle<()>>,
    closed: bool,
    /// Where the last read left off, kept while subscriptions stay open, so that a reader restarted over a
    /// reopened store carries on from there instead of from "now" and loses nothing committed in between.
    cursor: Option<FeedCursor>,
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Held by a subscription: the reader runs while one of these exists.
pub(crate) struct Guard(Arc<Feed>);

impl Drop for Guard {
    fn drop(&mut self) {
        let mut state = lock(&self.0.state);
        state.subscribers -= 1;
        if state.subscribers == 0 {
            self.0.stop(&mut state);
            state.cursor = None;
        }
    }
}

impl Feed {
    pub(crate) fn new(store: Arc<dyn Store>, events: &broadcast::Sender<Event>, runtime: Handle) -> Arc<Feed> {
        Arc::new(Feed {
            events: events.downgrade(),
            runtime,
            state: Mutex::new(State {
                store,
                subscribers: 0,
                reader: None,
                closed: false,
                cursor: None,
            }),
            nudge: Notify::new(),
            begun: AtomicU64::new(0),
            finished: watch::channel(0).0,
            positioned: watch::channel(false).0,
        })
    }

    /// Registers a subscriber, starting the reader if it is the first.
    pub(crate) fn subscribe(self: &Arc<Self>) -> Guard {
        let mut state = lock(&self.state);
        state.subscribers += 1;
        if state.reader.is_none() && !state.closed {
            if state.subscribers == 1 {
                // The first subscriber hears commits from now on, not from where an earlier one left off.
                state.cursor = None;
            }
            self.positioned.send_replace(false);
            state.reader = Some(self.runtime.spawn(read(self.clone())));
        }
        Guard(self.clone())
    }

    /// Reads from `store` from now on (the engine reopened its store).
    pub(crate) fn switch(self: &Arc<Self>, store: Arc<dyn Store>) {
        let mut state = lock(&self.state);
        state.store = store;
        state.closed = false;
        if state.subscribers > 0 && state.reader.is_none() {
            self.positioned.send_replace(false);
            state.reader = Some(self.runtime.spawn(read(self.clone())));
        }
    }

    /// Stops the reader if it reads `store` (the engine that owns it closes). The cursor stays, for a reopen.
    pub(crate) fn close(&self, store: &Arc<dyn Store>) {
        let mut state = lock(&self.state);
        if Arc::ptr_eq(&state.store, store) {
            state.closed = true;
            self.stop(&mut state);
        }
    }

    fn stop(&self, state: &mut State) {
        if let Some(reader) = state.reader.take() {
            reader.abort();
            // Release every commit waiting for a read that will not come.
            self.finish(self.begun.fetch_add(1, Ordering::SeqCst) + 1);
            self.positioned.send_replace(true);
        }
    }

    /// Records that read `n` finished. A reader being aborted may still finish an older read; the count
    /// never goes back.
    fn finish(&self, n: u64) {
        self.finished.send_if_modified(|v| {
            let newer = n > *v;
            if newer {
                *v = n;
            }
            newer
        });
    }

    fn store(&self) -> Arc<dyn Store> {
        lock(&self.state).store.clone()
    }

    fn saved_cursor(&self) -> Option<FeedCursor> {
        lock(&self.state).cursor.clone()
    }

    fn save_cursor(&self, cursor: &FeedCursor) {
        lock(&self.state).cursor = Some(cursor.clone());
    }

    /// Waits, before a write begins, until the reader has its first position, so that the write's events are
    /// after it; returns at once when no reader runs.
    pub(crate) async fn before_write(&self) {
        if lock(&self.state).reader.is_none() {
            return;
        }
        let mut rx = self.positioned.subscribe();
        let _ = tokio::time::timeout(COMMIT_WAIT, rx.wait_for(|p| *p)).await;
    }

    /// After a local commit: asks for a read and waits until one that began after the commit has finished.
    pub(crate) async fn after_commit(&self) {
        let need = {
            let state = lock(&self.state);
            if state.reader.is_none() {
                return;
            }
            self.begun.load(Ordering::SeqCst) + 1
        };
        let mut rx = self.finished.subscribe();
        self.nudge.notify_one();
        if tokio::time::timeout(COMMIT_WAIT, rx.wait_for(|n| *n >= need))
            .await
            .is_err()
        {
            tracing::debug!("event feed did not publish a commit in time; its events follow later");
        }
    }
}

/// The reader: position, then read and publish until aborted, retrying store errors with backoff.
async fn read(feed: Arc<Feed>) {
    let mut delay = RETRY_MIN;
    let mut cursor: FeedCursor = loop {
        if let Some(c) = feed.saved_cursor() {
            break c;
        }
        match feed.store().feed_position().await {
            Ok(c) => {
                feed.save_cursor(&c);
                break c;
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "event feed cannot start; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(RETRY_MAX);
            }
        }
    };
    feed.positioned.send_replace(true);
    delay = RETRY_MIN;
    let mut failing = false;
    loop {
        if failing {
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(RETRY_MAX);
        } else {
            tokio::select! {
                _ = feed.nudge.notified() => {}
                _ = tokio::time::sleep(POLL_INTERVAL) => {}
            }
        }
        let n = feed.begun.fetch_add(1, Ordering::SeqCst) + 1;
        match feed.store().feed_read(&cursor).await {
            Ok((batch, next)) => {
                cursor = next;
                feed.save_cursor(&cursor);
                let Some(events) = feed.events.upgrade() else {
                    return;
                };
                for e in order(batch) {
                    let _ = events.send(e);
                }
                if failing {
                    tracing::info!("event feed reads again; nothing was lost");
                }
                failing = false;
                delay = RETRY_MIN;
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "event feed read failed; retrying from the same position");
                failing = true;
            }
        }
        feed.finish(n);
    }
}
