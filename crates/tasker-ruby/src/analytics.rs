//! The analytics calls of `TaskerCore::Internal::Client` (DESIGN §5), in tasker-shared-ffi's order; their
//! objects are the table's `TaskerCore::Performance::*` classes.

use magnus::{method, prelude::*, Error, RClass, RModule, Ruby, Value};
use tasker_shared_ffi::AnalyticsFilterInput;

use crate::client::RbClient;
use crate::convert::{lift_options, lift_time};

impl RbClient {
    fn execution_context(ruby: &Ruby, rb_self: &Self, task_id: String) -> Result<Value, Error> {
        rb_self.call(ruby, move |c| c.execution_context(&task_id))
    }

    fn dependency_levels(ruby: &Ruby, rb_self: &Self, task_id: String) -> Result<Value, Error> {
        rb_self.call(ruby, move |c| c.dependency_levels(&task_id))
    }

    fn health_counts(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        rb_self.call(ruby, move |c| c.health_counts())
    }

    fn analytics_metrics(ruby: &Ruby, rb_self: &Self, since: Value) -> Result<Value, Error> {
        let since = lift_time(ruby, since, "since")?;
        rb_self.call(ruby, move |c| c.analytics_metrics(since))
    }

    fn slowest_steps(ruby: &Ruby, rb_self: &Self, filter: Value, limit: usize) -> Result<Value, Error> {
        let filter: AnalyticsFilterInput = lift_options(ruby, filter, "filter")?;
        rb_self.call(ruby, move |c| c.slowest_steps(filter, limit))
    }

    fn slowest_tasks(ruby: &Ruby, rb_self: &Self, filter: Value, limit: usize) -> Result<Value, Error> {
        let filter: AnalyticsFilterInput = lift_options(ruby, filter, "filter")?;
        rb_self.call(ruby, move |c| c.slowest_tasks(filter, limit))
    }
}

pub fn register(_ruby: &Ruby, internal: RModule) -> Result<(), Error> {
    let class: RClass = internal.const_get("Client")?;
    class.define_method("execution_context", method!(RbClient::execution_context, 1))?;
    class.define_method("dependency_levels", method!(RbClient::dependency_levels, 1))?;
    class.define_method("health_counts", method!(RbClient::health_counts, 0))?;
    class.define_method("analytics_metrics", method!(RbClient::analytics_metrics, 1))?;
    class.define_method("slowest_steps", method!(RbClient::slowest_steps, 2))?;
    class.define_method("slowest_tasks", method!(RbClient::slowest_tasks, 2))?;
    Ok(())
}
