//! The analytics calls of `TaskerCore::Internal::Client`; lib/tasker_core/performance.rb wraps their results
//! in `TaskerCore::Performance` objects.

use magnus::{method, prelude::*, Error, RArray, RClass, Ruby, Value};
use tasker_shared_ffi::AnalyticsFilterInput;

use crate::client::RbClient;
use crate::convert::{lift_struct, lift_time, lower, lower_all};
use crate::errors::RbResult;
use crate::gvl::without_gvl;

impl RbClient {
    fn health_counts(ruby: &Ruby, rb_self: &Self) -> Result<Value, Error> {
        let c = rb_self.inner.clone();
        lower(ruby, &without_gvl(move || c.health_counts()).rb()?)
    }

    fn analytics_metrics(ruby: &Ruby, rb_self: &Self, since: Value) -> Result<Value, Error> {
        let since = lift_time(ruby, since, "since")?;
        let c = rb_self.inner.clone();
        lower(ruby, &without_gvl(move || c.analytics_metrics(since)).rb()?)
    }

    fn slowest_steps(ruby: &Ruby, rb_self: &Self, filter: Value, limit: usize) -> Result<RArray, Error> {
        let filter: AnalyticsFilterInput = lift_struct(ruby, filter, "filter")?;
        let c = rb_self.inner.clone();
        lower_all(ruby, &without_gvl(move || c.slowest_steps(filter, limit)).rb()?)
    }

    fn slowest_tasks(ruby: &Ruby, rb_self: &Self, filter: Value, limit: usize) -> Result<RArray, Error> {
        let filter: AnalyticsFilterInput = lift_struct(ruby, filter, "filter")?;
        let c = rb_self.inner.clone();
        lower_all(ruby, &without_gvl(move || c.slowest_tasks(filter, limit)).rb()?)
    }

    fn dependency_levels(ruby: &Ruby, rb_self: &Self, task_id: String) -> Result<RArray, Error> {
        let c = rb_self.inner.clone();
        lower_all(ruby, &without_gvl(move || c.dependency_levels(&task_id)).rb()?)
    }

    fn execution_context(ruby: &Ruby, rb_self: &Self, task_id: String) -> Result<Value, Error> {
        let c = rb_self.inner.clone();
        lower(ruby, &without_gvl(move || c.execution_context(&task_id)).rb()?)
    }
}

pub fn init(class: RClass) -> Result<(), Error> {
    class.define_method("health_counts", method!(RbClient::health_counts, 0))?;
    class.define_method("analytics_metrics", method!(RbClient::analytics_metrics, 1))?;
    class.define_method("slowest_steps", method!(RbClient::slowest_steps, 2))?;
    class.define_method("slowest_tasks", method!(RbClient::slowest_tasks, 2))?;
    class.define_method("dependency_levels", method!(RbClient::dependency_levels, 1))?;
    class.define_method("execution_context", method!(RbClient::execution_context, 1))?;
    Ok(())
}
