//! The analytics methods of the native `Client` (DESIGN §5), in tasker-shared-ffi's order.

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::blocking::rejected;
use crate::client::{lifted, Client};
use crate::convert::{lift_options, lift_time};

#[napi]
impl Client {
    #[napi]
    pub fn execution_context<'env>(&self, env: &'env Env, task_id: String) -> Result<Object<'env>> {
        self.call(env, move |c| async move { c.execution_context_async(&task_id).await })
    }

    #[napi]
    pub fn dependency_levels<'env>(&self, env: &'env Env, task_id: String) -> Result<Object<'env>> {
        self.call(env, move |c| async move { c.dependency_levels_async(&task_id).await })
    }

    #[napi]
    pub fn health_counts<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        self.call(env, |c| async move { c.health_counts_async().await })
    }

    #[napi]
    pub fn analytics_metrics<'env>(&self, env: &'env Env, since: Unknown) -> Result<Object<'env>> {
        let since = lifted!(env, lift_time(&since, "since"));
        self.call(env, move |c| async move { c.analytics_metrics_async(since).await })
    }

    #[napi]
    pub fn slowest_steps<'env>(&self, env: &'env Env, filter: Option<Unknown>, limit: u32) -> Result<Object<'env>> {
        let filter = lifted!(env, lift_options(filter, "filter"));
        self.call(env, move |c| async move {
            c.slowest_steps_async(filter, limit as usize).await
        })
    }

    #[napi]
    pub fn slowest_tasks<'env>(&self, env: &'env Env, filter: Option<Unknown>, limit: u32) -> Result<Object<'env>> {
        let filter = lifted!(env, lift_options(filter, "filter"));
        self.call(env, move |c| async move {
            c.slowest_tasks_async(filter, limit as usize).await
        })
    }
}
