//! `Client` (native): the engine handle and every engine operation, in tasker-shared-ffi's order. Every call
//! that touches the store returns a Promise (blocking.rs); js/engine.js is the JS surface over it (`Engine`,
//! option objects, milliseconds). The template checks an editor needs without a store come last.

use js_sys::Promise;
use serde_json::Value;
use tasker_shared_ffi::{self as ffi, authoring, FfiError};
use wasm_bindgen::prelude::*;

use crate::blocking::{lifted, promise, settle_with};
use crate::convert::{lift_options, lift_value, lower, lower_json};
use crate::errors::IntoHost;
use crate::events::Subscription;
use crate::worker::WorkerSession;

#[wasm_bindgen]
pub struct Client {
    pub(crate) inner: ffi::Client,
}

const NOT_A_DEFINITION: &str = "expected a string (YAML or JSON) or an object";

/// A template argument: YAML or JSON text, or a parsed document.
fn definition(source: &JsValue) -> Result<Value, FfiError> {
    match lift_value(source, "definition")? {
        v @ (Value::String(_) | Value::Object(_)) => Ok(v),
        _ => Err(FfiError::validation("definition", NOT_A_DEFINITION)),
    }
}

#[wasm_bindgen]
impl Client {
    /// A Promise of a client on the store `url` names (`memory:` is the one store a wasm build has).
    pub fn open(url: String, options: JsValue) -> Promise {
        let options = lifted!(lift_options(&options, "options"));
        settle_with(async move { ffi::Client::open_async(&url, options).await }, |inner| {
            Ok(Client { inner }.into())
        })
    }

    pub fn close(&self) -> Promise {
        let c = self.inner.clone();
        promise(async move { c.close_async().await })
    }

    #[wasm_bindgen(js_name = isClosed)]
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    pub fn health(&self) -> Result<JsValue, JsValue> {
        lower(&self.inner.health().into_host()?)
    }

    pub fn now(&self) -> Result<JsValue, JsValue> {
        lower(&self.inner.now().into_host()?)
    }

    #[wasm_bindgen(js_name = advanceClockMs)]
    pub fn advance_clock_ms(&self, ms: f64) -> Result<JsValue, JsValue> {
        lower(&self.inner.advance_clock_ms(ms as i64).into_host()?)
    }

    pub fn subscribe(&self, filter: JsValue) -> Result<Subscription, JsValue> {
        let filter = lift_options(&filter, "filter").into_host()?;
        Ok(Subscription::new(self.inner.subscribe(filter).into_host()?))
    }

    /// Starts a worker session; its background work runs as local tasks on the JS event loop.
    #[wasm_bindgen(js_name = workerSession)]
    pub fn worker_session(&self, options: JsValue) -> Result<WorkerSession, JsValue> {
        let options = lift_options(&options, "options").into_host()?;
        Ok(WorkerSession::new(self.inner.worker_session(options).into_host()?))
    }

    /// Registers a template given as YAML or JSON text, or as an object.
    #[wasm_bindgen(js_name = registerTemplate)]
    pub fn register_template(&self, source: JsValue) -> Promise {
        let (c, source) = (self.inner.clone(), lifted!(definition(&source)));
        promise(async move {
            match &source {
                Value::String(text) => c.register_template_async(text).await,
                doc => c.register_template_value_async(doc).await,
            }
        })
    }

    pub fn template(&self, namespace: String, name: String, version: Option<String>) -> Promise {
        let c = self.inner.clone();
        promise(async move { c.template_async(&namespace, &name, version.as_deref()).await })
    }

    pub fn templates(&self) -> Promise {
        let c = self.inner.clone();
        promise(async move { c.templates_async().await })
    }

    /// The template `namespace`/`name` (newest version unless `version`) drawn as `mermaid` or `dot` text.
    #[wasm_bindgen(js_name = renderTemplate)]
    pub fn render_template(&self, namespace: String, name: String, format: String, version: Option<String>) -> Promise {
        let c = self.inner.clone();
        settle_with(
            async move {
                c.render_template_async(&namespace, &name, version.as_deref(), &format)
                    .await
            },
            |text| Ok(text.into()),
        )
    }

    #[wasm_bindgen(js_name = createTask)]
    pub fn create_task(&self, namespace: String, name: String, options: JsValue) -> Promise {
        // No prefix: a bad context reads `context.items[3].sku: …`, as the caller wrote it.
        let (c, options) = (self.inner.clone(), lifted!(lift_options(&options, "")));
        promise(async move { c.create_task_async(&namespace, &name, options).await })
    }

    pub fn task(&self, task_id: String) -> Promise {
        let c = self.inner.clone();
        promise(async move { c.task_async(&task_id).await })
    }

    pub fn tasks(&self, filter: JsValue) -> Promise {
        let (c, filter) = (self.inner.clone(), lifted!(lift_options(&filter, "filter")));
        promise(async move { c.tasks_async(filter).await })
    }

    pub fn steps(&self, task_id: String) -> Promise {
        let c = self.inner.clone();
        promise(async move { c.steps_async(&task_id).await })
    }

    pub fn step(&self, step_id: String) -> Promise {
        let c = self.inner.clone();
        promise(async move { c.step_async(&step_id).await })
    }

    pub fn explain(&self, task_id: String) -> Promise {
        let c = self.inner.clone();
        promise(async move { c.explain_async(&task_id).await })
    }

    pub fn transitions(&self, task_id: String) -> Promise {
        let c = self.inner.clone();
        promise(async move { c.transitions_async(&task_id).await })
    }

    #[wasm_bindgen(js_name = cancelTask)]
    pub fn cancel_task(&self, task_id: String, reason: Option<String>) -> Promise {
        let c = self.inner.clone();
        promise(async move { c.cancel_task_async(&task_id, reason.as_deref()).await })
    }

    #[wasm_bindgen(js_name = runTaskNow)]
    pub fn run_task_now(&self, task_id: String) -> Promise {
        let c = self.inner.clone();
        promise(async move { c.run_task_now_async(&task_id).await })
    }

    #[wasm_bindgen(js_name = retryTask)]
    pub fn retry_task(&self, task_id: String) -> Promise {
        let c = self.inner.clone();
        promise(async move { c.retry_task_async(&task_id).await })
    }

    #[wasm_bindgen(js_name = resolveStep)]
    pub fn resolve_step(&self, step_id: String, result: JsValue) -> Promise {
        let (c, result) = (self.inner.clone(), lifted!(lift_value(&result, "result")));
        promise(async move { c.resolve_step_manually_async(&step_id, result).await })
    }

    #[wasm_bindgen(js_name = resolveTask)]
    pub fn resolve_task(&self, task_id: String, reason: Option<String>) -> Promise {
        let c = self.inner.clone();
        promise(async move { c.resolve_task_manually_async(&task_id, reason.as_deref()).await })
    }

    #[wasm_bindgen(js_name = reapExpiredLeases)]
    pub fn reap_expired_leases(&self, limit: u32) -> Promise {
        let c = self.inner.clone();
        promise(async move { c.reap_expired_leases_async(limit).await })
    }

    #[wasm_bindgen(js_name = registerSchedule)]
    pub fn register_schedule(
        &self,
        name: String,
        namespace: String,
        template: String,
        cron: String,
        options: JsValue,
    ) -> Promise {
        // No prefix, as in `create_task`: a bad context reads `context.region: …`.
        let (c, options) = (self.inner.clone(), lifted!(lift_options(&options, "")));
        promise(async move {
            c.register_schedule_async(&name, &namespace, &template, &cron, options)
                .await
        })
    }

    #[wasm_bindgen(js_name = pauseSchedule)]
    pub fn pause_schedule(&self, name: String) -> Promise {
        let c = self.inner.clone();
        promise(async move { c.pause_schedule_async(&name).await })
    }

    #[wasm_bindgen(js_name = resumeSchedule)]
    pub fn resume_schedule(&self, name: String) -> Promise {
        let c = self.inner.clone();
        promise(async move { c.resume_schedule_async(&name).await })
    }

    #[wasm_bindgen(js_name = removeSchedule)]
    pub fn remove_schedule(&self, name: String) -> Promise {
        let c = self.inner.clone();
        promise(async move { c.remove_schedule_async(&name).await })
    }

    pub fn schedules(&self) -> Promise {
        let c = self.inner.clone();
        promise(async move { c.schedules_async().await })
    }

    pub fn schedule(&self, name: String) -> Promise {
        let c = self.inner.clone();
        promise(async move { c.schedule_async(&name).await })
    }

    #[wasm_bindgen(js_name = fireSchedules)]
    pub fn fire_schedules(&self) -> Promise {
        let c = self.inner.clone();
        promise(async move { c.fire_schedules_async().await })
    }
}

/// Checks a template (text or object) exactly as registering it would, without a store: resolves nothing
/// and throws the `ValidationError` that lists every problem with its field path, or the
/// `CycleDetectedError` whose `details.path` names the cycle.
#[wasm_bindgen(js_name = validateTemplate)]
pub fn validate_template(source: JsValue) -> Result<(), JsValue> {
    match definition(&source).into_host()? {
        Value::String(text) => authoring::validate_template(&text),
        doc => authoring::validate_template_value(&doc),
    }
    .into_host()
}

/// A template (text or object) drawn as `mermaid` or `dot` text before it is registered; throws as
/// `validateTemplate` does when it is not valid.
#[wasm_bindgen(js_name = renderDefinition)]
pub fn render_definition(source: JsValue, format: String) -> Result<String, JsValue> {
    authoring::render_definition(&definition(&source).into_host()?, &format).into_host()
}

/// The delays of a retry policy (a template's `retry` block) for up to `attempts` retries:
/// `[{ attempt, delay_ms, min_ms, max_ms }]`.
#[wasm_bindgen(js_name = backoffPreview)]
pub fn backoff_preview(policy: JsValue, attempts: u32) -> Result<JsValue, JsValue> {
    let policy = lift_value(&policy, "retry").into_host()?;
    let rows = authoring::backoff_preview(&policy, attempts).into_host()?;
    lower_json(&Value::Array(rows))
}
