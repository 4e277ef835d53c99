//! What a template editor needs, with no store: check a template exactly as registration does, draw a
//! registered one, and preview a retry policy's delays. The rules are tasker-core's (the template walker, the
//! cycle check, [`RetryPolicy::backoff`]); this module only runs them without an engine.

use serde_json::{json, Value};
use tasker_core::retry::RetryPolicy;
use tasker_core::{Error, FieldError, Template};

use crate::client::Client;
use crate::error::{FfiError, FfiResult};

/// Checks a template given as YAML or JSON text as registering it would, without registering it: `Ok`, or
/// the `validation` error listing every problem with its field path, or `cycle_detected` naming the cycle.
pub fn validate_template(text: &str) -> FfiResult<()> {
    Template::parse(text)?;
    Ok(())
}

/// [`validate_template`] for a parsed document (a host map).
pub fn validate_template_value(value: &Value) -> FfiResult<()> {
    Template::from_value(value)?;
    Ok(())
}

/// A template given as text or as a parsed document, checked as [`validate_template`] does and drawn as
/// [`render`] does: what an editor shows before anything is registered.
pub fn render_definition(source: &Value, format: &str) -> FfiResult<String> {
    let template = match source {
        Value::String(text) => Template::parse(text)?,
        doc => Template::from_value(doc)?,
    };
    render(&template, format)
}

/// A template drawn as a graph: `mermaid` (a flowchart) or `dot` (Graphviz).
pub fn render(template: &Template, format: &str) -> FfiResult<String> {
    match format {
        "mermaid" => Ok(template.to_mermaid()),
        "dot" => Ok(template.to_dot()),
        other => Err(FfiError::validation(
            "format",
            format!("expected mermaid or dot, found {other:?}"),
        )),
    }
}

impl Client {
    /// A registered template drawn as a graph (see [`render`]); the newest version when `version` is `None`.
    pub async fn render_template_async(
        &self,
        namespace: &str,
        name: &str,
        version: Option<&str>,
        format: &str,
    ) -> FfiResult<String> {
        let record = self.engine()?.template(namespace, name, version).await?;
        render(&record.template, format)
    }
}

/// The delays a step's retry policy gives, for an editor: `policy` is a template's `retry` block (defaults
/// filled in and checked as in a template; errors name `retry.<field>`), and the answer lists, for each
/// failed attempt that is followed by another (at most `attempts`), `{ attempt, delay_ms, min_ms, max_ms }`:
/// the delay at the middle of its jitter range and the range's ends.
pub fn backoff_preview(policy: &Value, attempts: u32) -> FfiResult<Vec<Value>> {
    let doc = json!({
        "namespace": "preview", "name": "preview", "version": "0.0.0",
        "steps": [{ "name": "step", "handler": "preview.step", "retry": policy }],
    });
    let template = Template::from_value(&doc).map_err(|e| match e {
        Error::Validation { errors, .. } => FfiError::from(Error::Validation {
            what: "retry policy",
            errors: errors
                .into_iter()
                .map(|f| FieldError {
                    path: f.path.replacen("steps[0].", "", 1),
                    message: f.message,
                })
                .collect(),
        }),
        other => other.into(),
    })?;
    let p: &RetryPolicy = &template.steps[0].retry;
    let retries = p.attempt_budget().saturating_sub(1).min(attempts);
    Ok((1..=retries)
        .map(|a| {
            let ms = |unit| p.backoff(a, None, unit).as_millis() as u64;
            json!({ "attempt": a, "delay_ms": ms(0.5), "min_ms": ms(0.0), "max_ms": ms(1.0) })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn validation_lists_every_problem_and_names_a_cycle() {
        let e = validate_template("namespace: n\nname: x\nversion: nope\nsteps:\n  - { handler: h }\n").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Validation);
        let paths: Vec<&str> = e.details["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["path"].as_str().unwrap())
            .collect();
        assert!(
            paths.contains(&"version") && paths.contains(&"steps[0].name"),
            "{paths:?}"
        );
        let cyclic = "namespace: n\nname: x\nversion: 1.0.0\nsteps:\n  - { name: a, handler: h, depends_on: [b] }\n  - { name: b, handler: h, depends_on: [a] }\n";
        let e = validate_template(cyclic).unwrap_err();
        assert_eq!(e.kind, ErrorKind::CycleDetected);
        assert!(e.details["path"].as_array().unwrap().len() >= 3, "{}", e.details);
        assert!(validate_template(&cyclic.replace("depends_on: [b] ", "")).is_ok());
    }

    #[test]
    fn backoff_preview_follows_the_policy_and_names_bad_fields() {
        let p = json!({ "max_attempts": 4, "backoff": "exponential", "base_ms": 100, "jitter": 0.5 });
        let rows = backoff_preview(&p, 10).unwrap();
        let mid: Vec<u64> = rows.iter().map(|r| r["delay_ms"].as_u64().unwrap()).collect();
        assert_eq!(mid, vec![100, 200, 400]);
        assert_eq!(
            (rows[0]["min_ms"].as_u64(), rows[0]["max_ms"].as_u64()),
            (Some(50), Some(150))
        );
        assert_eq!(backoff_preview(&p, 1).unwrap().len(), 1);
        let e = backoff_preview(&json!({ "base_ms": "soon" }), 3).unwrap_err();
        assert_eq!(e.details["errors"][0]["path"], "retry.base_ms", "{}", e.details);
    }

    #[test]
    fn render_knows_two_formats() {
        let t = Template::parse("namespace: n\nname: x\nversion: 1.0.0\nsteps:\n  - { name: a, handler: h }\n  - { name: b, handler: h, depends_on: [a] }\n").unwrap();
        assert!(render(&t, "mermaid").unwrap().contains("-->"));
        assert!(render(&t, "dot").unwrap().contains("->"));
        assert_eq!(render(&t, "svg").unwrap_err().kind, ErrorKind::Validation);
        let text = Value::String("namespace: n\nname: x\nversion: 1.0.0\nsteps:\n  - { name: a, handler: h }\n".into());
        assert!(render_definition(&text, "dot").unwrap().contains("\"a\""));
        let bad = render_definition(&json!({ "namespace": "n" }), "dot").unwrap_err();
        assert_eq!(bad.kind, ErrorKind::Validation);
    }
}
