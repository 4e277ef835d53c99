//! tasker-node: the napi-rs adapter of Tasker Core (the addon `tasker_core.node`), with the skeleton every
//! binding shares (docs/bindings.md, "Adding a binding"). Each method converts its arguments (convert.rs),
//! makes one call into tasker-shared-ffi and maps errors (errors.rs); no SQL and no state, DAG or retry rule.
//! Every store call returns a Promise whose future runs on the shared runtime and which napi's deferred settles
//! on the JS thread (blocking.rs): the JS thread never blocks and no Tokio thread calls into JS. The worker
//! loop is JavaScript (lib/worker.js) over a `WorkerSession`.

use napi::bindgen_prelude::*;
use napi_derive::napi;

pub mod analytics;
pub mod blocking;
pub mod client;
pub mod convert;
pub mod errors;
pub mod events;
pub mod testing;
pub mod worker;

/// The addon's exports besides its classes and functions: the version, the error kinds and the object table.
#[napi(module_exports)]
pub fn module_exports(mut exports: Object, env: Env) -> Result<()> {
    exports.set("version", env!("CARGO_PKG_VERSION"))?;
    errors::register(&env, &mut exports)?;
    convert::register(&env, &mut exports)?;
    Ok(())
}
