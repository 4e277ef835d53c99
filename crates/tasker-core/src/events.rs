//! Events: one for every transition, published after the transaction that wrote it commits.
//!
//! The bus is a bounded broadcast channel. A subscriber that falls behind loses the oldest events and
//! counts how many it lost; the transition tables stay the durable record.
//!
//! On a store that other processes commit to (PostgreSQL, a SQLite file) the bus is fed by the event feed
//! (`feed.rs`), which reads back every process's transition rows, this one's included; [`order`] is the one
//! order those rows are published in. On the memory store the engine publishes its own commits directly.

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::clock::Timestamp;
use crate::model::{StepTransition, TaskTransition};
use crate::state::{StepEvent, TaskEvent};
#[cfg(feature = "runtime")]
use crate::store::FeedBatch;

/// Events a subscriber buffers before the oldest are dropped.
pub const DEFAULT_EVENT_CAPACITY: usize = 4096;

/// Something that happened to a task or a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// For example `step.completed`; see [`event_name_for_step`] and [`event_name_for_task`].
    pub name: String,
    pub task_id: Uuid,
    pub step_id: Option<Uuid>,
    pub step_name: Option<String>,
    pub attempt: Option<i64>,
    pub from_state: Option<String>,
    pub to_state: String,
    pub worker_id: Option<String>,
    pub metadata: serde_json::Value,
    pub timestamp: Timestamp,
}

/// The event name of a step transition.
pub fn event_name_for_step(event: Option<StepEvent>) -> &'static str {
    match event {
        None => "step.created",
        Some(StepEvent::Claim) => "step.claimed",
        Some(StepEvent::Complete) => "step.completed",
        Some(StepEvent::FailRetryable) => "step.retry_scheduled",
        Some(StepEvent::FailPermanent) => "step.failed",
        Some(StepEvent::LeaseExpired) => "step.lease_expired",
        Some(StepEvent::WorkerLost) => "step.worker_lost",
        Some(StepEvent::Cancel) => "step.cancelled",
        Some(StepEvent::Retry) => "step.retried",
        Some(StepEvent::ResolveManually) => "step.resolved_manually",
    }
}

/// The event name of a task transition.
pub fn event_name_for_task(event: Option<TaskEvent>) -> &'static str {
    match event {
        None => "task.created",
        Some(TaskEvent::Start) => "task.started",
        Some(TaskEvent::Complete) => "task.completed",
        Some(TaskEvent::Fail) => "task.failed",
        Some(TaskEvent::Cancel) => "task.cancelled",
        Some(TaskEvent::Retry) => "task.retried",
        Some(TaskEvent::Resume) => "task.resumed",
        Some(TaskEvent::ResolveManually) => "task.resolved_manually",
    }
}

impl Event {
    pub(crate) fn from_step(t: &StepTransition, step_name: Option<&str>) -> Event {
        Event {
            name: event_name_for_step(t.event).to_string(),
            task_id: t.task_id,
            step_id: Some(t.step_id),
            step_name: step_name.map(str::to_string),
            attempt: Some(t.attempt),
            from_state: t.from_state.map(|s| s.to_string()),
            to_state: t.to_state.to_string(),
            worker_id: t.worker_id.clone(),
            metadata: t.metadata.clone(),
            timestamp: t.created_at,
        }
    }

    pub(crate) fn from_task(t: &TaskTransition) -> Event {
        Event {
            name: event_name_for_task(t.event).to_string(),
            task_id: t.task_id,
            step_id: None,
            step_name: None,
            attempt: None,
            from_state: t.from_state.map(|s| s.to_string()),
            to_state: t.to_state.to_string(),
            worker_id: None,
            metadata: t.metadata.clone(),
            timestamp: t.created_at,
        }
    }
}

/// The events of the rows a feed read returned, in the order they are published (for the feed, hence `runtime`).
///
/// Each task's and each step's rows keep their sort-key order. Rows of different tasks and steps are merged
/// by `(created_at, id)`: within one transaction every row has the same time and the ids were minted in the
/// order the engine recorded the changes (UUIDv7, monotonic within a process), so one commit's events come
/// out in the order the engine made them, exactly as the memory store publishes them.
#[cfg(feature = "runtime")]
pub(crate) fn order(batch: FeedBatch) -> Vec<Event> {
    use std::cmp::Reverse;
    use std::collections::{BinaryHeap, HashMap};

    /// One row: its sort key, its merge key (time, id), and its event.
    type Row = (i64, Timestamp, Uuid, Event);
    // One list per task (its own transitions) and per step, each in sort-key order.
    let mut lists: HashMap<(Uuid, Option<Uuid>), Vec<Row>> = HashMap::new();
    for t in batch.tasks {
        lists
            .entry((t.task_id, None))
            .or_default()
            .push((t.sort_key, t.created_at, t.id, Event::from_task(&t)));
    }
    for (t, name) in batch.steps {
        lists.entry((t.task_id, Some(t.step_id))).or_default().push((
            t.sort_key,
            t.created_at,
            t.id,
            Event::from_step(&t, name.as_deref()),
        ));
    }
    let mut lists: Vec<std::vec::IntoIter<Row>> = lists
        .into_values()
        .map(|mut l| {
            l.sort_by_key(|r| r.0);
            l.into_iter()
        })
        .collect();
    let mut heads = BinaryHeap::new();
    let mut events = Vec::new();
    let mut pending: Vec<Option<Event>> = Vec::with_capacity(lists.len());
    for (i, l) in lists.iter_mut().enumerate() {
        let (_, at, id, e) = l.next().expect("a list has at least one row");
        heads.push(Reverse((at, id, i)));
        pending.push(Some(e));
    }
    while let Some(Reverse((_, _, i))) = heads.pop() {
        events.push(pending[i].take().expect("a head has its event"));
        if let Some((_, at, id, e)) = lists[i].next() {
            heads.push(Reverse((at, id, i)));
            pending[i] = Some(e);
        }
    }
    events
}

/// Which events a subscription receives.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventFilter {
    /// Only events of this task.
    pub task_id: Option<Uuid>,
    /// Only events whose name is one of these or starts with one of these followed by `.`
    /// (`step` matches every `step.*`). Empty means all.
    pub names: Vec<String>,
}

impl EventFilter {
    pub fn matches(&self, e: &Event) -> bool {
        if self.task_id.is_some_and(|t| t != e.task_id) {
            return false;
        }
        self.names.is_empty()
            || self
                .names
                .iter()
                .any(|n| e.name == *n || (e.name.starts_with(n.as_str()) && e.name[n.len()..].starts_with('.')))
    }
}

/// A stream of events for one subscriber.
pub struct Subscription {
    rx: broadcast::Receiver<Event>,
    filter: EventFilter,
    dropped: u64,
    /// Keeps the event feed reading while this subscription lives (SQL stores); dropping it lets the feed
    /// stop once no subscription is left.
    _feed: Option<Box<dyn std::any::Any + Send + Sync>>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("filter", &self.filter)
            .field("dropped", &self.dropped)
            .field("feed", &self._feed.is_some())
            .finish()
    }
}

impl Subscription {
    pub(crate) fn new(
        rx: broadcast::Receiver<Event>,
        filter: EventFilter,
        feed: Option<Box<dyn std::any::Any + Send + Sync>>,
    ) -> Self {
        Subscription {
            rx,
            filter,
            dropped: 0,
            _feed: feed,
        }
    }

    /// Events lost because this subscriber fell more than the buffer behind.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The next matching event, waiting at most `timeout`; `None` on timeout or when the engine is gone.
    #[cfg(feature = "runtime")]
    pub async fn next(&mut self, timeout: std::time::Duration) -> Option<Event> {
        tokio::time::timeout(timeout, self.recv()).await.ok().flatten()
    }

    /// The next matching event, however long it takes; `None` when the engine is gone. It needs no timer, so
    /// any executor can drive it (a browser's included); cancel it by dropping the future.
    pub async fn recv(&mut self) -> Option<Event> {
        loop {
            match self.rx.recv().await {
                Ok(e) if self.filter.matches(&e) => return Some(e),
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => self.dropped += n,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// The next matching event if one is buffered.
    pub fn try_next(&mut self) -> Option<Event> {
        loop {
            match self.rx.try_recv() {
                Ok(e) if self.filter.matches(&e) => return Some(e),
                Ok(_) => {}
                Err(broadcast::error::TryRecvError::Lagged(n)) => self.dropped += n,
                Err(_) => return None,
            }
        }
    }

    /// Every matching event buffered now.
    pub fn drain(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.try_next()).collect()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;
    use crate::model::new_id;
    use crate::state::{StepState, TaskState};

    fn step_row(
        task: Uuid,
        step: Uuid,
        sort_key: i64,
        to: StepState,
        at: Timestamp,
    ) -> (StepTransition, Option<String>) {
        (
            StepTransition {
                id: new_id(),
                step_id: step,
                task_id: task,
                from_state: None,
                to_state: to,
                event: None,
                attempt: sort_key,
                worker_id: None,
                metadata: serde_json::Value::Null,
                sort_key,
                created_at: at,
            },
            Some("s".into()),
        )
    }

    fn task_row(task: Uuid, sort_key: i64, to: TaskState, at: Timestamp) -> TaskTransition {
        TaskTransition {
            id: new_id(),
            task_id: task,
            from_state: None,
            to_state: to,
            event: None,
            metadata: serde_json::Value::Null,
            sort_key,
            created_at: at,
        }
    }

    #[test]
    fn a_feed_read_keeps_each_entity_in_sort_key_order_and_one_transaction_in_the_order_it_was_made() {
        let t0 = chrono::Utc::now();
        let (task, a, b) = (new_id(), new_id(), new_id());
        // One transaction: rows share a time, and their ids were minted in the order the engine made them.
        let created = [
            step_row(task, a, 1, StepState::Pending, t0),
            step_row(task, b, 1, StepState::Pending, t0),
        ];
        let task_created = task_row(task, 1, TaskState::Pending, t0);
        // Step a's later rows were written by a worker whose clock runs behind: their times go backwards.
        let claimed = step_row(task, a, 2, StepState::InProgress, t0 + TimeDelta::milliseconds(5));
        let done = step_row(task, a, 3, StepState::Complete, t0 - TimeDelta::milliseconds(50));
        let batch = FeedBatch {
            // The store hands rows back in any order.
            steps: vec![done.clone(), created[1].clone(), claimed.clone(), created[0].clone()],
            tasks: vec![task_created.clone()],
        };
        let events = order(batch.clone());
        assert_eq!(events, order(batch), "the order is deterministic");
        let of = |step: Uuid| -> Vec<String> {
            events
                .iter()
                .filter(|e| e.step_id == Some(step))
                .map(|e| e.to_state.clone())
                .collect()
        };
        assert_eq!(
            of(a),
            ["pending", "in_progress", "complete"],
            "sort-key order despite the clock"
        );
        assert_eq!(of(b), ["pending"]);
        // The first transaction's rows in the order their ids were minted: a, b, then the task.
        let first: Vec<(Option<Uuid>, &str)> = events
            .iter()
            .filter(|e| e.timestamp == t0)
            .map(|e| (e.step_id, e.name.as_str()))
            .collect();
        assert_eq!(
            first,
            [
                (Some(a), "step.created"),
                (Some(b), "step.created"),
                (None, "task.created")
            ]
        );
        assert_eq!(events.len(), 5);
        assert!(events.iter().all(|e| e.task_id == task));
    }
}
