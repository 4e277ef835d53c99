//! The analytics methods of `tasker_core._native.Client` (DESIGN §5), in tasker-shared-ffi's order; their
//! objects are re-exported by `tasker_core.performance`.

use pyo3::prelude::*;

use crate::client::Client;
use crate::convert::{lift_options, lift_time, Options};

#[pymethods]
impl Client {
    fn execution_context(&self, py: Python<'_>, task_id: String) -> PyResult<Py<PyAny>> {
        self.call(py, move |c| c.execution_context(&task_id))
    }

    fn dependency_levels(&self, py: Python<'_>, task_id: String) -> PyResult<Py<PyAny>> {
        self.call(py, move |c| c.dependency_levels(&task_id))
    }

    fn health_counts(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.call(py, move |c| c.health_counts())
    }

    fn analytics_metrics(&self, py: Python<'_>, since: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let since = lift_time(since, "since")?;
        self.call(py, move |c| c.analytics_metrics(since))
    }

    fn slowest_steps(&self, py: Python<'_>, filter: Options<'_, '_>, limit: usize) -> PyResult<Py<PyAny>> {
        let filter = lift_options(filter, "filter")?;
        self.call(py, move |c| c.slowest_steps(filter, limit))
    }

    fn slowest_tasks(&self, py: Python<'_>, filter: Options<'_, '_>, limit: usize) -> PyResult<Py<PyAny>> {
        let filter = lift_options(filter, "filter")?;
        self.call(py, move |c| c.slowest_tasks(filter, limit))
    }
}
