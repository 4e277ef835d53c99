//! `tasker_core.Client`: the store handle. Each method converts its arguments, makes one call into
//! tasker-shared-ffi with the GIL released (through [`crate::blocking`]) and lowers the result.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use tasker_shared_ffi as ffi;
use tasker_shared_ffi::{
    ClientOptions, ClockKind, CreateTaskOptions, EventFilterInput, TaskFilterInput, WorkerOptions,
};

use crate::blocking;
use crate::convert::{
    invalid, lift_json, lift_object, lift_seconds_ms, lift_timestamp, ClientHealth, DependencyLevel, ExecutionContext,
    Explain, ReapReport, Registration, Step, Task, TemplateInfo, Transitions,
};
use crate::errors::ResultExt;
use crate::events::Subscription;
use crate::worker::WorkerSession;

/// A connection to a Tasker store. Open with `Client.connect(url, **opts)`; close with `close()` or a `with`
/// block. Dropping it does not close it.
#[pyclass(module = "tasker_core", frozen)]
pub struct Client {
    pub(crate) inner: ffi::Client,
}

impl Client {
    pub(crate) fn ffi(&self) -> ffi::Client {
        self.inner.clone()
    }
}

#[pymethods]
impl Client {
    /// Opens `memory:`, `sqlite::memory:`, `sqlite://path` or `postgres://…`.
    #[staticmethod]
    #[pyo3(signature = (url, *, clock = "system", manual_clock_start = None, migrate = true, max_connections = 8, event_capacity = 4096))]
    fn connect(
        py: Python<'_>,
        url: &str,
        clock: &str,
        manual_clock_start: Option<&Bound<'_, PyAny>>,
        migrate: bool,
        max_connections: u32,
        event_capacity: usize,
    ) -> PyResult<Client> {
        let options = ClientOptions {
            clock: clock.parse::<ClockKind>().py(py)?,
            manual_clock_start: manual_clock_start
                .map(|t| lift_timestamp(t, "manual_clock_start"))
                .transpose()?,
            migrate,
            max_connections,
            event_capacity,
        };
        let url = url.to_string();
        let inner = blocking(py, move || ffi::Client::open(&url, options))?;
        Ok(Client { inner })
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    /// Closes the client; idempotent. Every later call raises `ClosedError`.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let c = self.ffi();
        blocking(py, move || c.close())
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.is_closed()
    }

    fn __repr__(&self) -> String {
        format!("{:?}", self.inner)
    }

    /// Registers a template given as YAML/JSON text or as a dict.
    fn register_template(&self, py: Python<'_>, definition: &Bound<'_, PyAny>) -> PyResult<Registration> {
        let c = self.ffi();
        if let Ok(text) = definition.cast::<PyString>() {
            let text = text.to_cow()?.into_owned();
            return blocking(py, move || c.register_template(&text)).map(Registration);
        }
        if !definition.is_instance_of::<PyDict>() {
            return Err(invalid(py, "definition", "expected a str (YAML or JSON) or a dict"));
        }
        let value = lift_json(definition, "definition")?;
        blocking(py, move || c.register_template_value(&value)).map(Registration)
    }

    /// One template version; the newest when `version` is None.
    #[pyo3(signature = (namespace, name, version = None))]
    fn template(
        &self,
        py: Python<'_>,
        namespace: String,
        name: String,
        version: Option<String>,
    ) -> PyResult<TemplateInfo> {
        let c = self.ffi();
        blocking(py, move || c.template(&namespace, &name, version.as_deref())).map(TemplateInfo)
    }

    /// Every registered template version.
    fn templates(&self, py: Python<'_>) -> PyResult<Vec<TemplateInfo>> {
        let c = self.ffi();
        Ok(blocking(py, move || c.templates())?
            .into_iter()
            .map(TemplateInfo)
            .collect())
    }

    /// Creates a task of a registered template.
    #[pyo3(signature = (namespace, name, *, version = None, context = None, idempotency_key = None, tags = None, initiator = None, source_system = None, reason = None))]
    #[allow(clippy::too_many_arguments)]
    fn create_task(
        &self,
        py: Python<'_>,
        namespace: String,
        name: String,
        version: Option<String>,
        context: Option<&Bound<'_, PyAny>>,
        idempotency_key: Option<String>,
        tags: Option<&Bound<'_, PyAny>>,
        initiator: Option<String>,
        source_system: Option<String>,
        reason: Option<String>,
    ) -> PyResult<Task> {
        let options = CreateTaskOptions {
            version,
            context: lift_object(context, "context")?,
            idempotency_key,
            tags: lift_object(tags, "tags")?,
            initiator,
            source_system,
            reason,
        };
        let c = self.ffi();
        blocking(py, move || c.create_task(&namespace, &name, options)).map(Task)
    }

    fn task(&self, py: Python<'_>, task_id: String) -> PyResult<Task> {
        let c = self.ffi();
        blocking(py, move || c.task(&task_id)).map(Task)
    }

    /// Tasks, newest first.
    #[pyo3(signature = (*, namespace = None, name = None, state = None, limit = None, before = None))]
    fn tasks(
        &self,
        py: Python<'_>,
        namespace: Option<String>,
        name: Option<String>,
        state: Option<String>,
        limit: Option<u32>,
        before: Option<String>,
    ) -> PyResult<Vec<Task>> {
        let filter = TaskFilterInput {
            namespace,
            name,
            state,
            limit,
            before,
        };
        let c = self.ffi();
        Ok(blocking(py, move || c.tasks(filter))?.into_iter().map(Task).collect())
    }

    fn steps(&self, py: Python<'_>, task_id: String) -> PyResult<Vec<Step>> {
        let c = self.ffi();
        Ok(blocking(py, move || c.steps(&task_id))?.into_iter().map(Step).collect())
    }

    fn step(&self, py: Python<'_>, step_id: String) -> PyResult<Step> {
        let c = self.ffi();
        blocking(py, move || c.step(&step_id)).map(Step)
    }

    /// Why each step of the task is or is not ready.
    fn explain(&self, py: Python<'_>, task_id: String) -> PyResult<Explain> {
        let c = self.ffi();
        blocking(py, move || c.explain(&task_id)).map(Explain)
    }

    fn execution_context(&self, py: Python<'_>, task_id: String) -> PyResult<ExecutionContext> {
        let c = self.ffi();
        blocking(py, move || c.execution_context(&task_id)).map(ExecutionContext)
    }

    fn dependency_levels(&self, py: Python<'_>, task_id: String) -> PyResult<Vec<DependencyLevel>> {
        let c = self.ffi();
        Ok(blocking(py, move || c.dependency_levels(&task_id))?
            .into_iter()
            .map(DependencyLevel)
            .collect())
    }

    fn transitions(&self, py: Python<'_>, task_id: String) -> PyResult<Transitions> {
        let c = self.ffi();
        blocking(py, move || c.transitions(&task_id)).map(Transitions)
    }

    #[pyo3(signature = (task_id, reason = None))]
    fn cancel_task(&self, py: Python<'_>, task_id: String, reason: Option<String>) -> PyResult<Task> {
        let c = self.ffi();
        blocking(py, move || c.cancel_task(&task_id, reason.as_deref())).map(Task)
    }

    fn retry_task(&self, py: Python<'_>, task_id: String) -> PyResult<Task> {
        let c = self.ffi();
        blocking(py, move || c.retry_task(&task_id)).map(Task)
    }

    /// Resolves a step by hand with `result`, unblocking its dependants.
    fn resolve_step(&self, py: Python<'_>, step_id: String, result: &Bound<'_, PyAny>) -> PyResult<Step> {
        let result = lift_json(result, "result")?;
        let c = self.ffi();
        blocking(py, move || c.resolve_step_manually(&step_id, result)).map(Step)
    }

    #[pyo3(signature = (task_id, reason = None))]
    fn resolve_task(&self, py: Python<'_>, task_id: String, reason: Option<String>) -> PyResult<Task> {
        let c = self.ffi();
        blocking(py, move || c.resolve_task_manually(&task_id, reason.as_deref())).map(Task)
    }

    /// Recovers steps whose lease expired (workers run this themselves; tests call it directly).
    #[pyo3(signature = (limit = 1000))]
    fn reap_expired_leases(&self, py: Python<'_>, limit: u32) -> PyResult<ReapReport> {
        let c = self.ffi();
        blocking(py, move || c.reap_expired_leases(limit)).map(ReapReport)
    }

    fn health(&self, py: Python<'_>) -> PyResult<ClientHealth> {
        self.inner.health().py(py).map(ClientHealth)
    }

    /// Checks the store with a round trip and reopens it if that fails; True when it was rebuilt.
    fn validate_or_refresh(&self, py: Python<'_>) -> PyResult<bool> {
        let c = self.ffi();
        blocking(py, move || c.validate_or_refresh())
    }

    /// The engine's clock now (timezone-aware).
    fn now(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        crate::convert::Lower::lower(&self.inner.now().py(py)?, py)
    }

    /// Moves a manual clock forward by `seconds`; returns the new time.
    fn advance_clock(&self, py: Python<'_>, seconds: f64) -> PyResult<Py<PyAny>> {
        let ms = lift_seconds_ms(py, seconds, "seconds")?;
        let t = self.inner.advance_clock_ms(ms as i64).py(py)?;
        crate::convert::Lower::lower(&t, py)
    }

    /// `"system"` or `"manual"`.
    #[getter]
    fn clock(&self) -> &'static str {
        match self.inner.clock_kind() {
            ClockKind::System => "system",
            ClockKind::Manual => "manual",
        }
    }

    /// Subscribes to events published from now on; `names` match exactly or by prefix (`"step"`).
    #[pyo3(signature = (*, task_id = None, names = None))]
    fn subscribe(&self, py: Python<'_>, task_id: Option<String>, names: Option<Vec<String>>) -> PyResult<Subscription> {
        let filter = EventFilterInput {
            task_id,
            names: names.unwrap_or_default(),
        };
        let sub = self.inner.subscribe(filter).py(py)?;
        Ok(Subscription::new(sub, self.ffi()))
    }

    /// Opens a worker session for `handler_keys` (the protocol `tasker_core.Worker` drives). Durations in
    /// seconds; `heartbeat_interval=None` means lease / 3 and 0 means never.
    #[pyo3(signature = (handler_keys, *, worker_id = None, lease = 30.0, heartbeat_interval = None, poll_interval = 1.0, maintenance_interval = 5.0))]
    #[allow(clippy::too_many_arguments)] // one per keyword option of the Python signature
    fn worker_session(
        &self,
        py: Python<'_>,
        handler_keys: Vec<String>,
        worker_id: Option<String>,
        lease: f64,
        heartbeat_interval: Option<f64>,
        poll_interval: f64,
        maintenance_interval: f64,
    ) -> PyResult<WorkerSession> {
        let options = WorkerOptions {
            worker_id,
            handler_keys,
            lease_ms: lift_seconds_ms(py, lease, "lease")?,
            heartbeat_interval_ms: heartbeat_interval
                .map(|s| lift_seconds_ms(py, s, "heartbeat_interval"))
                .transpose()?,
            poll_interval_ms: lift_seconds_ms(py, poll_interval, "poll_interval")?,
            maintenance_interval_ms: lift_seconds_ms(py, maintenance_interval, "maintenance_interval")?,
        };
        let session = self.inner.worker_session(options).py(py)?;
        Ok(WorkerSession::new(session))
    }
}
