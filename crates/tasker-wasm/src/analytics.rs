//! The client's analytics methods (DESIGN §5), computed by the engine from the store's data.

use js_sys::Promise;
use wasm_bindgen::prelude::*;

use crate::blocking::{lifted, promise};
use crate::client::Client;
use crate::convert::{lift_options, lift_time};

#[wasm_bindgen]
impl Client {
    #[wasm_bindgen(js_name = executionContext)]
    pub fn execution_context(&self, task_id: String) -> Promise {
        let c = self.inner.clone();
        promise(async move { c.execution_context_async(&task_id).await })
    }

    #[wasm_bindgen(js_name = dependencyLevels)]
    pub fn dependency_levels(&self, task_id: String) -> Promise {
        let c = self.inner.clone();
        promise(async move { c.dependency_levels_async(&task_id).await })
    }

    #[wasm_bindgen(js_name = healthCounts)]
    pub fn health_counts(&self) -> Promise {
        let c = self.inner.clone();
        promise(async move { c.health_counts_async().await })
    }

    #[wasm_bindgen(js_name = analyticsMetrics)]
    pub fn analytics_metrics(&self, since: JsValue) -> Promise {
        let (c, since) = (self.inner.clone(), lifted!(lift_time(&since, "since")));
        promise(async move { c.analytics_metrics_async(since).await })
    }

    #[wasm_bindgen(js_name = slowestSteps)]
    pub fn slowest_steps(&self, filter: JsValue, limit: u32) -> Promise {
        let (c, filter) = (self.inner.clone(), lifted!(lift_options(&filter, "filter")));
        promise(async move { c.slowest_steps_async(filter, limit as usize).await })
    }

    #[wasm_bindgen(js_name = slowestTasks)]
    pub fn slowest_tasks(&self, filter: JsValue, limit: u32) -> Promise {
        let (c, filter) = (self.inner.clone(), lifted!(lift_options(&filter, "filter")));
        promise(async move { c.slowest_tasks_async(filter, limit as usize).await })
    }
}
