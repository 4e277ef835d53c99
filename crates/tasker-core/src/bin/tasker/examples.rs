//! The example templates, embedded so that the binary works from any directory.

use tasker_core::engine::Registration;
use tasker_core::{Engine, Result};

/// (file name, YAML) of every example template; their handlers live in [`crate::handlers`].
pub const TEMPLATES: [(&str, &str); 3] = [
    (
        "order_fulfillment.yaml",
        include_str!("../../../../../examples/order_fulfillment.yaml"),
    ),
    (
        "etl_pipeline.yaml",
        include_str!("../../../../../examples/etl_pipeline.yaml"),
    ),
    (
        "regional_report.yaml",
        include_str!("../../../../../examples/regional_report.yaml"),
    ),
];

/// Registers every example template; registering one that is already there is a no-op.
pub async fn register_all(engine: &Engine) -> Result<Vec<Registration>> {
    let mut out = Vec::with_capacity(TEMPLATES.len());
    for (_, text) in TEMPLATES {
        out.push(engine.register_template(text).await?);
    }
    Ok(out)
}
