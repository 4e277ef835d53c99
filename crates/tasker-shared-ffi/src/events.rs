//! Event subscriptions: the host pulls events; nothing calls into it.
//!
//! The buffer is bounded: each subscription holds at most `ClientOptions::event_capacity` events (4096 by
//! default). A subscriber that falls further behind loses the oldest events, and [`Subscription::dropped`]
//! counts them. Events are a notification; the transition tables (`Client::transitions`) are the durable
//! record. A subscription sees only events published after it was made. On PostgreSQL and on a SQLite file
//! those are the commits of every process on the database, read back from the transition tables by the core
//! (`tasker_core::feed`); nothing here differs by store.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
#[cfg(feature = "native")]
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tasker_core::events::{EventFilter, Subscription as CoreSubscription};

use crate::dto::Event;
use crate::error::{FfiError, FfiResult};
use crate::runtime;

/// Which events a subscription receives.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EventFilterInput {
    /// Only events of this task (a UUID string).
    pub task_id: Option<String>,
    /// Only events whose name is one of these, or starts with one of these and a dot (`step` matches every
    /// `step.*`). Empty means all.
    pub names: Vec<String>,
}

impl EventFilterInput {
    pub(crate) fn to_core(&self) -> FfiResult<EventFilter> {
        Ok(EventFilter {
            task_id: self
                .task_id
                .as_deref()
                .map(|t| tasker_core::parse_id("filter.task_id", t))
                .transpose()?,
            names: self.names.clone(),
        })
    }
}

/// A stream of events for one consumer. Clones share the stream (each event goes to one of them).
#[derive(Clone)]
pub struct Subscription {
    inner: Arc<tokio::sync::Mutex<CoreSubscription>>,
    dropped: Arc<AtomicU64>,
    pid: u32,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

impl Subscription {
    pub(crate) fn new(inner: CoreSubscription) -> Self {
        Subscription {
            inner: Arc::new(tokio::sync::Mutex::new(inner)),
            dropped: Arc::new(AtomicU64::new(0)),
            pid: crate::pid(),
        }
    }

    fn check_pid(&self) -> FfiResult<()> {
        let current = crate::pid();
        if self.pid != current {
            return Err(FfiError::forked("subscription", self.pid, current));
        }
        Ok(())
    }

    /// The next matching event, waiting at most `timeout`; `None` when none came in time, or when the
    /// client was closed and the buffer is empty. Blocks; [`Self::next_async`] is the async form.
    #[cfg(feature = "native")]
    pub fn next(&self, timeout: Duration) -> FfiResult<Option<Event>> {
        runtime::block_on(self.next_async(timeout))
    }

    /// The async form of [`Subscription::next`]. Its timer is the shared runtime's, hence `native`; without
    /// it, [`Self::recv_async`] waits, and the host's own timer bounds the wait.
    #[cfg(feature = "native")]
    pub async fn next_async(&self, timeout: Duration) -> FfiResult<Option<Event>> {
        self.check_pid()?;
        let (inner, dropped) = (self.inner.clone(), self.dropped.clone());
        runtime::spawn(async move {
            let deadline = tokio::time::Instant::now() + timeout;
            let Ok(mut sub) = tokio::time::timeout_at(deadline, inner.lock()).await else {
                return Ok(None);
            };
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let e = sub.next(left).await;
            dropped.store(sub.dropped(), Ordering::Relaxed);
            Ok(e.map(Into::into))
        })
        .await
    }

    /// The next matching event, however long it takes; `None` when the client was closed and the buffer is
    /// empty. It runs in place on the executor that awaits it, with no timer and no runtime, and dropping the
    /// future cancels the wait.
    pub async fn recv_async(&self) -> FfiResult<Option<Event>> {
        self.check_pid()?;
        let mut sub = self.inner.lock().await;
        let e = sub.recv().await;
        self.dropped.store(sub.dropped(), Ordering::Relaxed);
        Ok(e.map(Into::into))
    }

    /// The next matching event if one is buffered; never waits. While another thread waits in `next` on
    /// this same subscription, returns `None`.
    pub fn try_next(&self) -> FfiResult<Option<Event>> {
        self.check_pid()?;
        runtime::guard(|| {
            let Ok(mut sub) = self.inner.try_lock() else {
                return Ok(None);
            };
            let e = sub.try_next();
            self.dropped.store(sub.dropped(), Ordering::Relaxed);
            Ok(e.map(Into::into))
        })
    }

    /// Every matching event buffered now, oldest first; never waits.
    pub fn drain(&self) -> FfiResult<Vec<Event>> {
        self.check_pid()?;
        runtime::guard(|| {
            let Ok(mut sub) = self.inner.try_lock() else {
                return Ok(Vec::new());
            };
            let events = sub.drain();
            self.dropped.store(sub.dropped(), Ordering::Relaxed);
            Ok(events.into_iter().map(Into::into).collect())
        })
    }

    /// Events lost so far because this subscription fell more than the buffer behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(all(test, feature = "native"))]
mod tests {
    use super::*;
    use crate::client::{Client, ClientOptions, CreateTaskOptions};
    use crate::ErrorKind;

    const T: &str = "namespace: ev\nname: one\nversion: 1.0.0\nsteps:\n  - { name: only, handler: ev.only }\n";

    #[test]
    fn filters_by_task_and_name_prefix() {
        let c = Client::open("memory:", ClientOptions::default()).unwrap();
        c.register_template(T).unwrap();
        let all = c.subscribe(EventFilterInput::default()).unwrap();
        let a = c.create_task("ev", "one", CreateTaskOptions::default()).unwrap();
        let only_a_tasks = c
            .subscribe(EventFilterInput {
                task_id: Some(a.id.clone()),
                names: vec!["task".into()],
            })
            .unwrap();
        c.cancel_task(&a.id, Some("test")).unwrap();
        let b = c.create_task("ev", "one", CreateTaskOptions::default()).unwrap();
        let names: Vec<String> = all.drain().unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(
            names,
            [
                "task.created",
                "step.created",
                "step.cancelled",
                "task.cancelled",
                "task.created",
                "step.created"
            ]
        );
        let mine = only_a_tasks.drain().unwrap();
        assert_eq!(mine.len(), 1);
        assert_eq!(
            (mine[0].name.as_str(), mine[0].task_id.as_str()),
            ("task.cancelled", a.id.as_str())
        );
        assert!(only_a_tasks.try_next().unwrap().is_none());
        assert_ne!(a.id, b.id);
    }

    #[test]
    fn next_waits_for_an_event_and_times_out_when_none_comes() {
        let c = Client::open("memory:", ClientOptions::default()).unwrap();
        c.register_template(T).unwrap();
        let sub = c.subscribe(EventFilterInput::default()).unwrap();
        assert!(sub.next(Duration::from_millis(20)).unwrap().is_none());
        let producer = {
            let c = c.clone();
            std::thread::spawn(move || c.create_task("ev", "one", CreateTaskOptions::default()).unwrap())
        };
        let first = sub
            .next(Duration::from_secs(10))
            .unwrap()
            .expect("an event within the deadline");
        assert_eq!(first.name, "task.created");
        producer.join().unwrap();
        fn send<T: Send>(t: T) -> T {
            t
        }
        let second = runtime::block_on(send(sub.next_async(Duration::from_secs(10))))
            .unwrap()
            .unwrap();
        assert_eq!(second.name, "step.created");
    }

    #[test]
    fn recv_waits_on_any_executor_and_ends_when_the_client_closes() {
        let c = Client::open("memory:", ClientOptions::default()).unwrap();
        c.register_template(T).unwrap();
        let sub = c.subscribe(EventFilterInput::default()).unwrap();
        let producer = {
            let c = c.clone();
            std::thread::spawn(move || c.create_task("ev", "one", CreateTaskOptions::default()).unwrap())
        };
        let first = runtime::run_in_place(sub.recv_async()).unwrap().expect("an event");
        assert_eq!(first.name, "task.created");
        producer.join().unwrap();
        c.close().unwrap();
        // What was buffered before the close still comes, then the end of the stream.
        let second = runtime::run_in_place(sub.recv_async())
            .unwrap()
            .expect("the buffered event");
        assert_eq!(second.name, "step.created");
        assert!(runtime::run_in_place(sub.recv_async()).unwrap().is_none());
    }

    #[test]
    fn a_full_buffer_drops_the_oldest_and_counts_them() {
        let c = Client::open(
            "memory:",
            ClientOptions {
                event_capacity: 4,
                ..Default::default()
            },
        )
        .unwrap();
        c.register_template(T).unwrap();
        let sub = c.subscribe(EventFilterInput::default()).unwrap();
        for _ in 0..5 {
            c.create_task("ev", "one", CreateTaskOptions::default()).unwrap();
        }
        let kept = sub.drain().unwrap();
        assert_eq!(kept.len(), 4);
        assert_eq!(sub.dropped(), 6);
        // The newest survive: the last task's two events are among them.
        assert_eq!(kept.last().unwrap().name, "step.created");
    }

    #[test]
    fn malformed_task_filter_is_a_validation_error() {
        let c = Client::open("memory:", ClientOptions::default()).unwrap();
        let e = c
            .subscribe(EventFilterInput {
                task_id: Some("zzz".into()),
                names: vec![],
            })
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Validation);
        assert!(e.message.contains("filter.task_id"));
    }

    #[test]
    fn closing_the_client_ends_the_stream_after_the_buffer() {
        let c = Client::open("memory:", ClientOptions::default()).unwrap();
        c.register_template(T).unwrap();
        let sub = c.subscribe(EventFilterInput::default()).unwrap();
        c.create_task("ev", "one", CreateTaskOptions::default()).unwrap();
        c.close().unwrap();
        assert_eq!(sub.next(Duration::from_secs(5)).unwrap().unwrap().name, "task.created");
        assert_eq!(sub.next(Duration::from_secs(5)).unwrap().unwrap().name, "step.created");
        // The engine is gone, so this returns at once rather than after the timeout.
        let start = std::time::Instant::now();
        assert!(sub.next(Duration::from_secs(30)).unwrap().is_none());
        assert!(start.elapsed() < Duration::from_secs(25));
    }
}
