//! The in-memory store: for WASM and fast tests.
//!
//! One mutex guards all state. A transaction holds the lock for its whole life and keeps an undo log of
//! the first version of every row it touched, so a transaction dropped without commit restores them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};
use tokio::sync::{Mutex, OwnedMutexGuard};
use uuid::Uuid;

use super::{ClaimInput, ClaimParams, ClaimedRow, PoolStats, Store, StoreKind, StoreTx};
use crate::analytics::finished_summary;
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::model::*;
use crate::readiness::{has_slot, is_due, state_is_claimable};
use crate::schedule::Schedule;
use crate::state::{StepState, TaskState};

#[derive(Debug, Default)]
struct State {
    templates: BTreeMap<Uuid, TemplateRecord>,
    template_keys: HashMap<(String, String, String), Uuid>,
    tasks: BTreeMap<Uuid, Task>,
    idempotency: HashMap<(String, String, String), Uuid>,
    steps: BTreeMap<Uuid, Step>,
    task_steps: HashMap<Uuid, Vec<Uuid>>,
    children: HashMap<Uuid, Vec<Uuid>>,
    parents: HashMap<Uuid, Vec<Uuid>>,
    edges: HashMap<Uuid, Vec<Edge>>,
    step_transitions: Vec<StepTransition>,
    task_transitions: Vec<TaskTransition>,
    /// Steps in a claimable state with no unfinished parents, in claim order: the claim scans only these.
    candidates: BTreeSet<ClaimOrder>,
    /// Held tasks by the time their hold ends.
    held: BTreeSet<(Timestamp, Uuid)>,
    /// How many steps of each concurrency key are `in_progress`, kept by `put_step` and `remove_step` (every
    /// change of a step, rollbacks included, goes through them), so it always equals a count of the rows.
    running: HashMap<String, i64>,
    schedules: BTreeMap<String, Schedule>,
}

type ClaimOrder = (std::cmp::Reverse<i32>, Timestamp, Uuid);

fn is_candidate(s: &Step) -> bool {
    state_is_claimable(s.state) && s.unfinished_parents == 0
}

impl State {
    fn put_step(&mut self, step: Step) {
        if let Some(old) = self.steps.remove(&step.id) {
            self.candidates.remove(&old.claim_order());
            self.count_running(&old, -1);
        }
        if is_candidate(&step) {
            self.candidates.insert(step.claim_order());
        }
        self.count_running(&step, 1);
        self.steps.insert(step.id, step);
    }

    fn remove_step(&mut self, id: Uuid) {
        if let Some(old) = self.steps.remove(&id) {
            self.candidates.remove(&old.claim_order());
            self.count_running(&old, -1);
        }
    }

    fn count_running(&mut self, s: &Step, by: i64) {
        let Some(key) = s.concurrency_key.as_ref().filter(|_| s.state == StepState::InProgress) else {
            return;
        };
        let n = self.running.entry(key.clone()).or_insert(0);
        *n += by;
        if *n == 0 {
            self.running.remove(key);
        }
    }

    /// How many steps of `key` are `in_progress`.
    fn running_of(&self, key: &str) -> i64 {
        self.running.get(key).copied().unwrap_or(0)
    }

    fn put_task(&mut self, task: Task) {
        if let Some(at) = self.tasks.get(&task.id).and_then(|t| t.held_until) {
            self.held.remove(&(at, task.id));
        }
        if let Some(at) = task.held_until {
            self.held.insert((at, task.id));
        }
        self.tasks.insert(task.id, task);
    }

    fn remove_task(&mut self, id: Uuid) {
        if let Some(at) = self.tasks.remove(&id).and_then(|t| t.held_until) {
            self.held.remove(&(at, id));
        }
    }

    fn candidate_steps(&self) -> impl Iterator<Item = &Step> + '_ {
        self.candidates.iter().filter_map(|(_, _, id)| self.steps.get(id))
    }
}

/// The in-memory store.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
    closed: Arc<AtomicBool>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    async fn read(&self) -> Result<tokio::sync::MutexGuard<'_, State>> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(self.state.lock().await)
    }
}

#[derive(Default)]
struct Undo {
    steps: HashMap<Uuid, Option<Step>>,
    tasks: HashMap<Uuid, Option<Task>>,
    templates: Vec<Uuid>,
    step_transitions_len: usize,
    task_transitions_len: usize,
    inserted_tasks: Vec<Uuid>,
    schedules: HashMap<String, Option<Schedule>>,
}

struct MemTx {
    guard: Option<OwnedMutexGuard<State>>,
    undo: Undo,
}

impl MemTx {
    /// Takes away the start-time parent of the root steps of every task whose hold ended by `now`.
    fn release_due_holds(&mut self, now: Timestamp) {
        let due: Vec<(Timestamp, Uuid)> = self.st().held.range(..=(now, Uuid::max())).copied().collect();
        for (at, task_id) in due {
            self.touch_task(task_id);
            let st = self.st();
            let Some(mut task) = st.tasks.get(&task_id).cloned() else {
                continue;
            };
            task.held_until = None;
            task.updated_at = now;
            st.put_task(task);
            let roots: Vec<Uuid> = st
                .task_steps
                .get(&task_id)
                .into_iter()
                .flatten()
                .filter(|id| st.parents.get(id).is_none_or(|p| p.is_empty()))
                .copied()
                .collect();
            for id in roots {
                self.touch_step(id);
                let st = self.st();
                let Some(mut s) = st.steps.get(&id).cloned() else {
                    continue;
                };
                if s.state == StepState::Pending && s.unfinished_parents > 0 {
                    s.unfinished_parents -= 1;
                    s.ready_at = at;
                    s.updated_at = now;
                    st.put_step(s);
                }
            }
        }
    }

    fn st(&mut self) -> &mut State {
        self.guard.as_mut().expect("transaction used after commit")
    }

    fn touch_step(&mut self, id: Uuid) {
        if !self.undo.steps.contains_key(&id) {
            let old = self.st().steps.get(&id).cloned();
            self.undo.steps.insert(id, old);
        }
    }

    fn touch_schedule(&mut self, name: &str) {
        if !self.undo.schedules.contains_key(name) {
            let old = self.st().schedules.get(name).cloned();
            self.undo.schedules.insert(name.to_owned(), old);
        }
    }

    fn touch_task(&mut self, id: Uuid) {
        if !self.undo.tasks.contains_key(&id) {
            let old = self.st().tasks.get(&id).cloned();
            self.undo.tasks.insert(id, old);
        }
    }
}

impl Drop for MemTx {
    fn drop(&mut self) {
        let Some(mut st) = self.guard.take() else { return };
        let undo = std::mem::take(&mut self.undo);
        st.step_transitions.truncate(undo.step_transitions_len);
        st.task_transitions.truncate(undo.task_transitions_len);
        for id in undo.templates {
            if let Some(t) = st.templates.remove(&id) {
                st.template_keys.remove(&(t.namespace, t.name, t.version));
            }
        }
        for id in &undo.inserted_tasks {
            if let Some(t) = st.tasks.get(id).cloned() {
                if let Some(k) = t.idempotency_key {
                    st.idempotency.remove(&(t.namespace, t.name, k));
                }
            }
            for sid in st.task_steps.remove(id).unwrap_or_default() {
                st.children.remove(&sid);
                st.parents.remove(&sid);
            }
            st.edges.remove(id);
        }
        for (name, old) in undo.schedules {
            match old {
                Some(s) => st.schedules.insert(name, s),
                None => st.schedules.remove(&name),
            };
        }
        for (id, old) in undo.tasks {
            match old {
                Some(t) => st.put_task(t),
                None => st.remove_task(id),
            };
        }
        for (id, old) in undo.steps {
            match old {
                Some(s) => st.put_step(s),
                None => st.remove_step(id),
            }
        }
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn kind(&self) -> StoreKind {
        StoreKind::Memory
    }

    async fn begin(&self) -> Result<Box<dyn StoreTx>> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let guard = self.state.clone().lock_owned().await;
        let undo = Undo {
            step_transitions_len: guard.step_transitions.len(),
            task_transitions_len: guard.task_transitions.len(),
            ..Undo::default()
        };
        Ok(Box::new(MemTx {
            guard: Some(guard),
            undo,
        }))
    }

    async fn ping(&self) -> Result<()> {
        self.read().await.map(|_| ())
    }

    fn pool_stats(&self) -> PoolStats {
        PoolStats {
            size: 1,
            idle: u32::from(self.state.try_lock().is_ok()),
        }
    }

    async fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    async fn template_list(&self, namespace: Option<&str>, name: Option<&str>) -> Result<Vec<TemplateRecord>> {
        let st = self.read().await?;
        Ok(st
            .templates
            .values()
            .filter(|t| namespace.is_none_or(|n| t.namespace == n) && name.is_none_or(|n| t.name == n))
            .cloned()
            .collect())
    }

    async fn template_by_id(&self, id: Uuid) -> Result<Option<TemplateRecord>> {
        Ok(self.read().await?.templates.get(&id).cloned())
    }

    async fn task_get(&self, id: Uuid) -> Result<Option<Task>> {
        Ok(self.read().await?.tasks.get(&id).cloned())
    }

    async fn task_list(&self, filter: &TaskFilter) -> Result<Vec<Task>> {
        let st = self.read().await?;
        let limit = filter.page_size() as usize;
        Ok(st
            .tasks
            .values()
            .rev()
            .filter(|t| filter.before.is_none_or(|b| t.id < b))
            .filter(|t| filter.namespace.as_ref().is_none_or(|n| &t.namespace == n))
            .filter(|t| filter.name.as_ref().is_none_or(|n| &t.name == n))
            .filter(|t| filter.state.is_none_or(|s| t.state == s))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn step_get(&self, id: Uuid) -> Result<Option<Step>> {
        Ok(self.read().await?.steps.get(&id).cloned())
    }

    async fn step_task_ids(&self, step_ids: &[Uuid]) -> Result<Vec<(Uuid, Uuid)>> {
        let st = self.read().await?;
        Ok(step_ids
            .iter()
            .filter_map(|id| st.steps.get(id).map(|s| (*id, s.task_id)))
            .collect())
    }

    async fn step_list(&self, task_id: Uuid) -> Result<Vec<Step>> {
        let st = self.read().await?;
        let mut steps: Vec<Step> = st
            .task_steps
            .get(&task_id)
            .map(|ids| ids.iter().filter_map(|id| st.steps.get(id).cloned()).collect())
            .unwrap_or_default();
        steps.sort_by_key(|s| s.position);
        Ok(steps)
    }

    async fn edge_list(&self, task_id: Uuid) -> Result<Vec<Edge>> {
        Ok(self.read().await?.edges.get(&task_id).cloned().unwrap_or_default())
    }

    async fn task_transition_list(&self, task_id: Uuid) -> Result<Vec<TaskTransition>> {
        let st = self.read().await?;
        let mut v: Vec<_> = st
            .task_transitions
            .iter()
            .filter(|t| t.task_id == task_id)
            .cloned()
            .collect();
        v.sort_by_key(|t| t.sort_key);
        Ok(v)
    }

    async fn step_transition_list(&self, task_id: Uuid) -> Result<Vec<StepTransition>> {
        let st = self.read().await?;
        let mut v: Vec<_> = st
            .step_transitions
            .iter()
            .filter(|t| t.task_id == task_id)
            .cloned()
            .collect();
        v.sort_by_key(|t| (t.step_id, t.sort_key));
        Ok(v)
    }

    async fn step_event_counts(&self, since: Timestamp) -> Result<Vec<(String, i64)>> {
        let st = self.read().await?;
        let mut counts: BTreeMap<String, i64> = BTreeMap::new();
        for t in st.step_transitions.iter().filter(|t| t.created_at >= since) {
            if let Some(e) = t.event {
                *counts.entry(e.to_string()).or_default() += 1;
            }
        }
        Ok(counts.into_iter().collect())
    }

    async fn state_counts(&self) -> Result<StateCounts> {
        let st = self.read().await?;
        let mut c = StateCounts::default();
        for t in st.tasks.values() {
            *c.tasks.entry(t.state).or_default() += 1;
        }
        for s in st.steps.values() {
            *c.steps.entry(s.state).or_default() += 1;
            if s.state == StepState::Error && s.attempts >= s.max_attempts {
                c.steps_exhausted += 1;
            }
        }
        Ok(c)
    }

    async fn step_finished_summary(&self, f: &AnalyticsFilter) -> Result<FinishedSummary> {
        let st = self.read().await?;
        let (mut completed, mut failed, mut durations) = (0, 0, Vec::new());
        for (s, _) in finished_steps(&st, f) {
            if s.state == StepState::Error {
                failed += 1;
                continue;
            }
            completed += 1;
            if let (Some(start), Some(end)) = (s.started_at, s.finished_at) {
                durations.push((end - start).num_milliseconds());
            }
        }
        Ok(finished_summary(completed, failed, durations))
    }

    async fn task_finished_summary(&self, f: &AnalyticsFilter) -> Result<FinishedSummary> {
        let st = self.read().await?;
        let (mut completed, mut failed, mut durations) = (0, 0, Vec::new());
        for t in finished_tasks(&st, f) {
            if t.state == TaskState::Error {
                failed += 1;
            } else {
                completed += 1;
                durations.push(task_duration_ms(t));
            }
        }
        Ok(finished_summary(completed, failed, durations))
    }

    async fn step_slowest(&self, f: &AnalyticsFilter, limit: i64) -> Result<Vec<StepTiming>> {
        let st = self.read().await?;
        let mut found: Vec<(i64, StepTiming)> = finished_steps(&st, f)
            .filter_map(|(s, t)| {
                let (start, end) = (s.started_at?, s.finished_at?);
                Some((
                    (end - start).num_milliseconds(),
                    StepTiming {
                        step_id: s.id,
                        task_id: t.id,
                        namespace: t.namespace.clone(),
                        task_name: t.name.clone(),
                        version: t.version.clone(),
                        step_name: s.name.clone(),
                        state: s.state,
                        attempts: s.attempts,
                        started_at: Some(start),
                        finished_at: end,
                    },
                ))
            })
            .collect();
        found.sort_by(|(a, x), (b, y)| b.cmp(a).then(x.step_id.cmp(&y.step_id)));
        found.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(found.into_iter().map(|(_, s)| s).collect())
    }

    async fn task_slowest(&self, f: &AnalyticsFilter, limit: i64) -> Result<Vec<TaskTiming>> {
        let st = self.read().await?;
        let mut found: Vec<(i64, TaskTiming)> = finished_tasks(&st, f)
            .filter_map(|t| {
                Some((
                    task_duration_ms(t),
                    TaskTiming {
                        task_id: t.id,
                        namespace: t.namespace.clone(),
                        name: t.name.clone(),
                        version: t.version.clone(),
                        state: t.state,
                        steps_total: t.steps_total,
                        created_at: t.created_at,
                        finished_at: t.finished_at?,
                    },
                ))
            })
            .collect();
        found.sort_by(|(a, x), (b, y)| b.cmp(a).then(x.task_id.cmp(&y.task_id)));
        found.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(found.into_iter().map(|(_, t)| t).collect())
    }

    async fn next_retry_at(&self, handler_keys: &[String]) -> Result<Option<Timestamp>> {
        let st = self.read().await?;
        // Held tasks count whatever their handler keys: a claim of any worker releases them.
        let retry = st
            .candidate_steps()
            .filter(|s| s.state == StepState::WaitingForRetry && handler_keys.contains(&s.handler_key))
            .filter(|s| st.tasks.get(&s.task_id).is_some_and(|t| t.state.is_runnable()))
            .filter_map(|s| s.next_attempt_at)
            .min();
        let hold = st.held.first().map(|(at, _)| *at);
        Ok(retry.into_iter().chain(hold).min())
    }

    async fn step_running_counts(&self, keys: &[String]) -> Result<Vec<(String, i64)>> {
        let st = self.read().await?;
        Ok(keys
            .iter()
            .map(|k| (k.clone(), st.running_of(k)))
            .filter(|(_, n)| *n > 0)
            .collect())
    }

    async fn schedule_list(&self) -> Result<Vec<Schedule>> {
        Ok(self.read().await?.schedules.values().cloned().collect())
    }

    async fn schedule_get(&self, name: &str) -> Result<Option<Schedule>> {
        Ok(self.read().await?.schedules.get(name).cloned())
    }

    async fn schedule_next_fire_at(&self) -> Result<Option<Timestamp>> {
        Ok(self
            .read()
            .await?
            .schedules
            .values()
            .filter_map(|s| s.next_fire_at)
            .min())
    }
}

/// Steps in `complete` or `error` with a `finished_at` at or after `f.since`, of tasks `f` names, with their task.
fn finished_steps<'a>(st: &'a State, f: &'a AnalyticsFilter) -> impl Iterator<Item = (&'a Step, &'a Task)> + 'a {
    st.steps.values().filter_map(move |s| {
        if !matches!(s.state, StepState::Complete | StepState::Error) {
            return None;
        }
        let fin = s.finished_at?;
        let t = st.tasks.get(&s.task_id)?;
        (f.since.is_none_or(|x| fin >= x) && analytics_match(f, t)).then_some((s, t))
    })
}

/// Tasks in `complete` or `error` with a `finished_at` at or after `f.since` that `f` names.
fn finished_tasks<'a>(st: &'a State, f: &'a AnalyticsFilter) -> impl Iterator<Item = &'a Task> + 'a {
    st.tasks.values().filter(move |t| {
        matches!(t.state, TaskState::Complete | TaskState::Error)
            && t.finished_at.is_some_and(|fin| f.since.is_none_or(|x| fin >= x))
            && analytics_match(f, t)
    })
}

fn task_duration_ms(t: &Task) -> i64 {
    t.finished_at.map_or(0, |fin| (fin - t.created_at).num_milliseconds())
}

fn analytics_match(f: &AnalyticsFilter, t: &Task) -> bool {
    f.namespace.as_ref().is_none_or(|n| &t.namespace == n)
        && f.name.as_ref().is_none_or(|n| &t.name == n)
        && f.version.as_ref().is_none_or(|v| &t.version == v)
}

#[async_trait]
impl StoreTx for MemTx {
    async fn claim_inputs(&mut self, step_ids: &[Uuid]) -> Result<Vec<ClaimInput>> {
        let st = self.st();
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::with_capacity(step_ids.len());
        for id in step_ids {
            if !seen.insert(*id) {
                continue;
            }
            let Some(step) = st.steps.get(id) else { continue };
            let Some(task) = st.tasks.get(&step.task_id) else {
                continue;
            };
            let mut deps = Map::new();
            for p in st.parents.get(id).into_iter().flatten() {
                if let Some(ps) = st.steps.get(p) {
                    deps.insert(ps.name.clone(), ps.result.clone().unwrap_or(Value::Null));
                }
            }
            out.push(ClaimInput {
                step_id: *id,
                namespace: task.namespace.clone(),
                task_name: task.name.clone(),
                context: task.context.clone(),
                dependency_results: deps,
            });
        }
        Ok(out)
    }

    async fn template_insert(&mut self, rec: &TemplateRecord) -> Result<()> {
        let key = (rec.namespace.clone(), rec.name.clone(), rec.version.clone());
        if self.st().template_keys.contains_key(&key) {
            return Err(Error::Conflict(format!(
                "template {}/{}@{} is already registered",
                rec.namespace, rec.name, rec.version
            )));
        }
        self.undo.templates.push(rec.id);
        let st = self.st();
        st.template_keys.insert(key, rec.id);
        st.templates.insert(rec.id, rec.clone());
        Ok(())
    }

    async fn template_find(&mut self, namespace: &str, name: &str, version: &str) -> Result<Option<TemplateRecord>> {
        let st = self.st();
        let key = (namespace.to_string(), name.to_string(), version.to_string());
        Ok(st.template_keys.get(&key).and_then(|id| st.templates.get(id)).cloned())
    }

    async fn task_find_by_idempotency_key(&mut self, namespace: &str, name: &str, key: &str) -> Result<Option<Task>> {
        let st = self.st();
        let k = (namespace.to_string(), name.to_string(), key.to_string());
        Ok(st.idempotency.get(&k).and_then(|id| st.tasks.get(id)).cloned())
    }

    async fn task_insert(&mut self, task: &Task, steps: &[Step], edges: &[Edge]) -> Result<()> {
        if let Some(k) = &task.idempotency_key {
            let key = (task.namespace.clone(), task.name.clone(), k.clone());
            if self.st().idempotency.contains_key(&key) {
                return Err(Error::Conflict(format!("idempotency key {k:?} is already used")));
            }
        }
        self.touch_task(task.id);
        for s in steps {
            self.touch_step(s.id);
        }
        self.undo.inserted_tasks.push(task.id);
        let st = self.st();
        if let Some(k) = &task.idempotency_key {
            st.idempotency
                .insert((task.namespace.clone(), task.name.clone(), k.clone()), task.id);
        }
        st.put_task(task.clone());
        st.task_steps.insert(task.id, steps.iter().map(|s| s.id).collect());
        for s in steps {
            st.put_step(s.clone());
        }
        for e in edges {
            st.children.entry(e.parent_id).or_default().push(e.child_id);
            st.parents.entry(e.child_id).or_default().push(e.parent_id);
        }
        st.edges.insert(task.id, edges.to_vec());
        Ok(())
    }

    async fn task_lock(&mut self, id: Uuid) -> Result<Option<Task>> {
        Ok(self.st().tasks.get(&id).cloned())
    }

    async fn task_update(&mut self, task: &Task) -> Result<()> {
        if !self.st().tasks.contains_key(&task.id) {
            return Err(Error::not_found("task", task.id));
        }
        self.touch_task(task.id);
        self.st().put_task(task.clone());
        Ok(())
    }

    async fn step_lock(&mut self, id: Uuid) -> Result<Option<Step>> {
        Ok(self.st().steps.get(&id).cloned())
    }

    async fn step_lock_all(&mut self, task_id: Uuid) -> Result<Option<Vec<Step>>> {
        let st = self.st();
        let mut steps: Vec<Step> = st
            .task_steps
            .get(&task_id)
            .map(|ids| ids.iter().filter_map(|id| st.steps.get(id).cloned()).collect())
            .unwrap_or_default();
        steps.sort_by_key(|s| s.position);
        // The store's one lock is held for the whole transaction: never busy.
        Ok(Some(steps))
    }

    async fn step_update(&mut self, step: &Step) -> Result<()> {
        if !self.st().steps.contains_key(&step.id) {
            return Err(Error::not_found("step", step.id));
        }
        self.touch_step(step.id);
        self.st().put_step(step.clone());
        Ok(())
    }

    async fn step_claim(&mut self, p: &ClaimParams) -> Result<Vec<ClaimedRow>> {
        self.release_due_holds(p.now);
        let st = self.st();
        // A keyed step is taken only while fewer than its limit steps of its key run, counting the ones this
        // claim took before it (in claim order); one that does not fit is passed over, not waited for.
        let mut taken: HashMap<&str, i64> = HashMap::new();
        let mut picked: Vec<Uuid> = Vec::new();
        for s in st
            .candidate_steps()
            .filter(|s| p.handler_keys.contains(&s.handler_key) && is_due(s.next_attempt_at, p.now))
            .filter(|s| st.tasks.get(&s.task_id).is_some_and(|t| t.state.is_runnable()))
        {
            if picked.len() >= p.limit as usize {
                break;
            }
            if let Some(key) = s.concurrency_key.as_deref() {
                let n = taken.entry(key).or_insert(0);
                if !has_slot(st.running_of(key) + *n, s.concurrency_limit.unwrap_or(0)) {
                    continue;
                }
                *n += 1;
            }
            picked.push(s.id);
        }
        let mut out = Vec::with_capacity(picked.len());
        for id in picked {
            self.touch_step(id);
            let st = self.st();
            let Some(mut s) = st.steps.get(&id).cloned() else {
                continue;
            };
            let from_state = s.state;
            s.state = StepState::InProgress;
            s.attempts += 1;
            s.transition_count += 1;
            s.worker_id = Some(p.worker_id.clone());
            s.lease_expires_at = Some(p.lease_expires_at);
            s.started_at = Some(p.now);
            s.next_attempt_at = None;
            s.updated_at = p.now;
            let task_state = st.tasks.get(&s.task_id).map(|t| t.state).unwrap_or(TaskState::Pending);
            st.put_step(s.clone());
            out.push(ClaimedRow {
                step: s,
                from_state,
                task_state,
            });
        }
        Ok(out)
    }

    async fn step_lease_extend(
        &mut self,
        tokens: &[ClaimToken],
        lease_expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<Vec<ClaimToken>> {
        let mut extended = Vec::new();
        for t in tokens {
            let ok = self
                .st()
                .steps
                .get(&t.step_id)
                .is_some_and(|s| s.state == StepState::InProgress && s.attempts == t.attempt);
            if ok {
                self.touch_step(t.step_id);
                if let Some(s) = self.st().steps.get_mut(&t.step_id) {
                    s.lease_expires_at = Some(lease_expires_at);
                    s.updated_at = now;
                }
                extended.push(*t);
            }
        }
        Ok(extended)
    }

    async fn step_lease_expired(&mut self, now: Timestamp, limit: u32) -> Result<Vec<Step>> {
        Ok(self
            .st()
            .steps
            .values()
            .filter(|s| s.state == StepState::InProgress && s.lease_expires_at.is_some_and(|l| l < now))
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn step_children_release(&mut self, parent_id: Uuid, now: Timestamp) -> Result<Vec<Uuid>> {
        let children = self.st().children.get(&parent_id).cloned().unwrap_or_default();
        let mut released = Vec::new();
        for c in children {
            self.touch_step(c);
            let st = self.st();
            if let Some(mut s) = st.steps.get(&c).cloned() {
                s.unfinished_parents -= 1;
                s.updated_at = now;
                if s.unfinished_parents == 0 {
                    s.ready_at = now;
                    released.push(c);
                }
                st.put_step(s);
            }
        }
        Ok(released)
    }

    async fn task_active_step_count(&mut self, task_id: Uuid) -> Result<i64> {
        let st = self.st();
        Ok(st
            .task_steps
            .get(&task_id)
            .into_iter()
            .flatten()
            .filter_map(|id| st.steps.get(id))
            .filter(|s| {
                matches!(s.state, StepState::InProgress | StepState::WaitingForRetry)
                    || (s.state == StepState::Pending && s.unfinished_parents == 0)
            })
            .count() as i64)
    }

    async fn step_retries_due(&mut self, after: Timestamp, until: Timestamp) -> Result<i64> {
        let st = self.st();
        Ok(st
            .candidate_steps()
            .filter(|s| s.state == StepState::WaitingForRetry)
            .filter(|s| s.next_attempt_at.is_some_and(|t| t > after && t <= until))
            .filter(|s| st.tasks.get(&s.task_id).is_some_and(|t| t.state.is_runnable()))
            .count() as i64)
    }

    async fn transitions_insert(&mut self, steps: &[StepTransition], tasks: &[TaskTransition]) -> Result<()> {
        let st = self.st();
        st.step_transitions.extend_from_slice(steps);
        st.task_transitions.extend_from_slice(tasks);
        Ok(())
    }

    async fn schedule_lock(&mut self, name: &str) -> Result<Option<Schedule>> {
        Ok(self.st().schedules.get(name).cloned())
    }

    async fn schedule_put(&mut self, schedule: &Schedule) -> Result<()> {
        self.touch_schedule(&schedule.name);
        self.st().schedules.insert(schedule.name.clone(), schedule.clone());
        Ok(())
    }

    async fn schedule_delete(&mut self, name: &str) -> Result<bool> {
        self.touch_schedule(name);
        Ok(self.st().schedules.remove(name).is_some())
    }

    async fn schedules_lock_due(&mut self, now: Timestamp, limit: u32) -> Result<Vec<Schedule>> {
        let mut due: Vec<Schedule> = self
            .st()
            .schedules
            .values()
            .filter(|s| s.next_fire_at.is_some_and(|t| t <= now))
            .cloned()
            .collect();
        due.sort_by(|a, b| (a.next_fire_at, &a.name).cmp(&(b.next_fire_at, &b.name)));
        due.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(due)
    }

    async fn rollback(self: Box<Self>) -> Result<()> {
        // Drop runs the undo log.
        drop(self);
        Ok(())
    }

    async fn commit(mut self: Box<Self>) -> Result<()> {
        // Dropping the guard without running the undo log keeps every change.
        self.undo = Undo::default();
        self.guard.take();
        Ok(())
    }
}

// The shared store checks live with the SQL stores' fixtures; the memory store must give the same answers.
#[cfg(all(test, any(feature = "sqlite", feature = "postgres")))]
mod tests {
    use super::MemoryStore;
    use crate::store::fixtures::{
        check_claim_order_and_holds, check_claim_takes_only_ready_steps, check_finished_summaries_and_slowest,
    };

    #[tokio::test]
    async fn finished_summaries_and_slowest() {
        check_finished_summaries_and_slowest(&MemoryStore::new()).await;
    }

    #[tokio::test]
    async fn claim_takes_only_ready_steps() {
        check_claim_takes_only_ready_steps(&MemoryStore::new()).await;
    }

    #[tokio::test]
    async fn claims_follow_priority_then_ready_time_and_release_holds() {
        check_claim_order_and_holds(&MemoryStore::new()).await;
    }
}
