//! `tasker_core._native.Client`: the store handle and every engine operation, in tasker-shared-ffi's order.
//! python/tasker_core/client.py is the Python surface over it (keyword arguments, `with`, seconds).

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use tasker_shared_ffi as ffi;
use tasker_shared_ffi::{FfiResult, Lower};

use crate::blocking::blocking;
use crate::convert::{invalid, lift_json, lift_options, lower, Options};
use crate::errors::IntoHost;
use crate::events::Subscription;
use crate::worker::WorkerSession;

#[pyclass(module = "tasker_core._native", frozen)]
pub struct Client {
    pub(crate) inner: ffi::Client,
}

impl Client {
    /// Calls the shared client with the GIL released and lowers what it returns: the body of most methods.
    pub(crate) fn call<T, F>(&self, py: Python<'_>, f: F) -> PyResult<Py<PyAny>>
    where
        T: Lower + Send,
        F: FnOnce(ffi::Client) -> FfiResult<T> + Send,
    {
        let c = self.inner.clone();
        lower(py, &blocking(py, move || f(c))?)
    }
}

#[pymethods]
impl Client {
    #[staticmethod]
    fn open(py: Python<'_>, url: String, options: Options<'_, '_>) -> PyResult<Client> {
        let options = lift_options(options, "options")?;
        let inner = blocking(py, move || ffi::Client::open(&url, options))?;
        Ok(Client { inner })
    }

    fn close(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.call(py, move |c| c.close())
    }

    fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    fn validate_or_refresh(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.call(py, move |c| c.validate_or_refresh())
    }

    fn refresh(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.call(py, move |c| c.refresh())
    }

    fn health(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        lower(py, &self.inner.health().into_host()?)
    }

    fn now(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        lower(py, &self.inner.now().into_host()?)
    }

    fn advance_clock_ms(&self, py: Python<'_>, ms: i64) -> PyResult<Py<PyAny>> {
        lower(py, &self.inner.advance_clock_ms(ms).into_host()?)
    }

    fn subscribe(&self, filter: Options<'_, '_>) -> PyResult<Subscription> {
        let filter = lift_options(filter, "filter")?;
        Ok(Subscription::new(self.inner.subscribe(filter).into_host()?))
    }

    fn worker_session(&self, py: Python<'_>, options: Options<'_, '_>) -> PyResult<WorkerSession> {
        let options = lift_options(options, "options")?;
        let c = self.inner.clone();
        Ok(WorkerSession::new(blocking(py, move || c.worker_session(options))?))
    }

    fn register_template(&self, py: Python<'_>, source: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        if let Ok(text) = source.cast::<PyString>() {
            let text = text.to_cow()?.into_owned();
            return self.call(py, move |c| c.register_template(&text));
        }
        if !source.is_instance_of::<PyDict>() {
            return Err(invalid("definition", "expected a str (YAML or JSON) or a dict"));
        }
        let doc = lift_json(source, "definition")?;
        self.call(py, move |c| c.register_template_value(&doc))
    }

    #[pyo3(signature = (namespace, name, version = None))]
    fn template(
        &self,
        py: Python<'_>,
        namespace: String,
        name: String,
        version: Option<String>,
    ) -> PyResult<Py<PyAny>> {
        self.call(py, move |c| c.template(&namespace, &name, version.as_deref()))
    }

    fn templates(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.call(py, move |c| c.templates())
    }

    fn create_task(&self, py: Python<'_>, ns: String, name: String, options: Options<'_, '_>) -> PyResult<Py<PyAny>> {
        // No prefix: a bad context reads `context.items[3].sku: …`, as the caller wrote it.
        let options = lift_options(options, "")?;
        self.call(py, move |c| c.create_task(&ns, &name, options))
    }

    fn task(&self, py: Python<'_>, task_id: String) -> PyResult<Py<PyAny>> {
        self.call(py, move |c| c.task(&task_id))
    }

    fn tasks(&self, py: Python<'_>, filter: Options<'_, '_>) -> PyResult<Py<PyAny>> {
        let filter = lift_options(filter, "filter")?;
        self.call(py, move |c| c.tasks(filter))
    }

    fn steps(&self, py: Python<'_>, task_id: String) -> PyResult<Py<PyAny>> {
        self.call(py, move |c| c.steps(&task_id))
    }

    fn step(&self, py: Python<'_>, step_id: String) -> PyResult<Py<PyAny>> {
        self.call(py, move |c| c.step(&step_id))
    }

    fn explain(&self, py: Python<'_>, task_id: String) -> PyResult<Py<PyAny>> {
        self.call(py, move |c| c.explain(&task_id))
    }

    fn transitions(&self, py: Python<'_>, task_id: String) -> PyResult<Py<PyAny>> {
        self.call(py, move |c| c.transitions(&task_id))
    }

    fn cancel_task(&self, py: Python<'_>, task_id: String, reason: Option<String>) -> PyResult<Py<PyAny>> {
        self.call(py, move |c| c.cancel_task(&task_id, reason.as_deref()))
    }

    fn run_task_now(&self, py: Python<'_>, task_id: String) -> PyResult<Py<PyAny>> {
        self.call(py, move |c| c.run_task_now(&task_id))
    }

    fn retry_task(&self, py: Python<'_>, task_id: String) -> PyResult<Py<PyAny>> {
        self.call(py, move |c| c.retry_task(&task_id))
    }

    fn resolve_step(&self, py: Python<'_>, step_id: String, result: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let result = lift_json(result, "result")?;
        self.call(py, move |c| c.resolve_step_manually(&step_id, result))
    }

    fn resolve_task(&self, py: Python<'_>, task_id: String, reason: Option<String>) -> PyResult<Py<PyAny>> {
        self.call(py, move |c| c.resolve_task_manually(&task_id, reason.as_deref()))
    }

    fn reap_expired_leases(&self, py: Python<'_>, limit: u32) -> PyResult<Py<PyAny>> {
        self.call(py, move |c| c.reap_expired_leases(limit))
    }

    fn register_schedule(
        &self,
        py: Python<'_>,
        name: String,
        namespace: String,
        template: String,
        cron: String,
        options: Options<'_, '_>,
    ) -> PyResult<Py<PyAny>> {
        // No prefix, as for create_task: a bad option reads `misfire: …` or `context.items[3]: …`.
        let options = lift_options(options, "")?;
        self.call(py, move |c| {
            c.register_schedule(&name, &namespace, &template, &cron, options)
        })
    }

    fn pause_schedule(&self, py: Python<'_>, name: String) -> PyResult<Py<PyAny>> {
        self.call(py, move |c| c.pause_schedule(&name))
    }

    fn resume_schedule(&self, py: Python<'_>, name: String) -> PyResult<Py<PyAny>> {
        self.call(py, move |c| c.resume_schedule(&name))
    }

    fn remove_schedule(&self, py: Python<'_>, name: String) -> PyResult<Py<PyAny>> {
        self.call(py, move |c| c.remove_schedule(&name))
    }

    fn schedules(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.call(py, move |c| c.schedules())
    }

    fn schedule(&self, py: Python<'_>, name: String) -> PyResult<Py<PyAny>> {
        self.call(py, move |c| c.schedule(&name))
    }

    fn fire_schedules(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.call(py, move |c| c.fire_schedules())
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Client>()
}
