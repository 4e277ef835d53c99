//! Analytics (`tasker_core.performance`): health counts, throughput and error rates, and the slowest
//! steps and tasks. Each function is one call into tasker-shared-ffi; the numbers are computed there.

use pyo3::prelude::*;
use tasker_shared_ffi::{dto, AnalyticsFilterInput};

use crate::blocking;
use crate::client::Client;
use crate::convert::{lift_timestamp, py_object};

py_object!(
    /// Tasks and steps by state.
    HealthCounts(dto::HealthCounts) { tasks, steps, total_tasks, total_steps, retrying, exhausted }
);
py_object!(
    /// Summary statistics of durations, in milliseconds.
    DurationStats(dto::DurationStats) { count, mean_ms, p50_ms, p95_ms, max_ms }
);
py_object!(
    /// Throughput and error rates over a window.
    AnalyticsMetrics(dto::AnalyticsMetrics) {
        since, until, window_seconds, tasks_completed, tasks_failed, task_completion_rate, task_error_rate,
        task_throughput_per_second, steps_completed, steps_failed, step_retries, step_throughput_per_second,
        task_duration, step_duration,
    }
);
py_object!(
    /// One of the slowest finished steps.
    SlowStep(dto::SlowStep) {
        step_id, task_id, namespace, task_name, version, step_name, state, attempts, duration_ms, started_at,
        finished_at,
    }
);
py_object!(
    /// One of the slowest finished tasks.
    SlowTask(dto::SlowTask) {
        task_id, namespace, name, version, state, steps_total, duration_ms, created_at, finished_at,
    }
);

fn filter(
    since: Option<&Bound<'_, PyAny>>,
    namespace: Option<String>,
    name: Option<String>,
    version: Option<String>,
) -> PyResult<AnalyticsFilterInput> {
    Ok(AnalyticsFilterInput {
        since: since.map(|s| lift_timestamp(s, "since")).transpose()?,
        namespace,
        name,
        version,
    })
}

#[pyfunction]
fn health_counts(py: Python<'_>, client: &Client) -> PyResult<HealthCounts> {
    let c = client.ffi();
    blocking(py, move || c.health_counts()).map(HealthCounts)
}

/// Metrics of the work finished since `since` (a timezone-aware datetime).
#[pyfunction]
fn analytics_metrics(py: Python<'_>, client: &Client, since: &Bound<'_, PyAny>) -> PyResult<AnalyticsMetrics> {
    let since = lift_timestamp(since, "since")?;
    let c = client.ffi();
    blocking(py, move || c.analytics_metrics(since)).map(AnalyticsMetrics)
}

#[pyfunction]
#[pyo3(signature = (client, *, since = None, namespace = None, name = None, version = None, limit = 10))]
fn slowest_steps(
    py: Python<'_>,
    client: &Client,
    since: Option<&Bound<'_, PyAny>>,
    namespace: Option<String>,
    name: Option<String>,
    version: Option<String>,
    limit: usize,
) -> PyResult<Vec<SlowStep>> {
    let f = filter(since, namespace, name, version)?;
    let c = client.ffi();
    Ok(blocking(py, move || c.slowest_steps(f, limit))?
        .into_iter()
        .map(SlowStep)
        .collect())
}

#[pyfunction]
#[pyo3(signature = (client, *, since = None, namespace = None, name = None, version = None, limit = 10))]
fn slowest_tasks(
    py: Python<'_>,
    client: &Client,
    since: Option<&Bound<'_, PyAny>>,
    namespace: Option<String>,
    name: Option<String>,
    version: Option<String>,
    limit: usize,
) -> PyResult<Vec<SlowTask>> {
    let f = filter(since, namespace, name, version)?;
    let c = client.ffi();
    Ok(blocking(py, move || c.slowest_tasks(f, limit))?
        .into_iter()
        .map(SlowTask)
        .collect())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<HealthCounts>()?;
    m.add_class::<DurationStats>()?;
    m.add_class::<AnalyticsMetrics>()?;
    m.add_class::<SlowStep>()?;
    m.add_class::<SlowTask>()?;
    m.add_function(wrap_pyfunction!(health_counts, m)?)?;
    m.add_function(wrap_pyfunction!(analytics_metrics, m)?)?;
    m.add_function(wrap_pyfunction!(slowest_steps, m)?)?;
    m.add_function(wrap_pyfunction!(slowest_tasks, m)?)?;
    Ok(())
}
