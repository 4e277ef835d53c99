//! `tasker template …`

use serde_json::json;
use tasker_core::template::StepTemplate;
use tasker_core::{Error, Template, TemplateRecord};

use super::{read_input, with_engine, Ctx};
use crate::cli::{TemplateCommand, TemplateFormat};
use crate::error::{CliError, CliResult, EXIT_FAILURE};
use crate::examples;
use crate::output::{kv_table, print_json, table, ts};

pub async fn run(ctx: &Ctx, cmd: TemplateCommand) -> CliResult {
    match cmd {
        TemplateCommand::Validate { file } => validate(ctx, &file),
        TemplateCommand::Register { files, examples } => register(ctx, &files, examples).await,
        TemplateCommand::List => list(ctx).await,
        TemplateCommand::Show {
            namespace,
            name,
            version,
            format,
        } => show(ctx, &namespace, &name, version.as_deref(), format).await,
    }
}

fn validate(ctx: &Ctx, file: &str) -> CliResult {
    let text = read_input(file)?;
    match Template::parse(&text) {
        Ok(t) => {
            let depth = t.levels().values().max().map_or(0, |l| l + 1);
            if ctx.json {
                print_json(&json!({"valid": true, "template": t}))
            } else {
                outln!(
                    "OK {}/{}@{}: {} steps in {} levels",
                    t.namespace,
                    t.name,
                    t.version,
                    t.steps.len(),
                    depth
                );
                Ok(())
            }
        }
        Err(e) => {
            if ctx.json {
                let errors = match &e {
                    Error::Validation { errors, .. } => json!(errors),
                    Error::CycleDetected { path } => {
                        json!([{"path": "steps", "message": e.to_string(), "cycle": path}])
                    }
                    other => json!([{"path": "", "message": other.to_string()}]),
                };
                print_json(&json!({"valid": false, "kind": e.kind(), "errors": errors}))?;
            }
            Err(e.into())
        }
    }
}

async fn register(ctx: &Ctx, files: &[String], with_examples: bool) -> CliResult {
    // Read and check every file first, so that one bad file registers nothing.
    let mut texts = Vec::new();
    for f in files {
        let text = read_input(f)?;
        Template::parse(&text).map_err(|e| {
            let e = CliError::from(e);
            CliError::new(e.code, format!("{f}: {}", e.message))
        })?;
        texts.push(text);
    }
    if with_examples {
        texts.extend(examples::TEMPLATES.iter().map(|(_, t)| t.to_string()));
    }
    let regs = with_engine(ctx, |engine| async move {
        let mut regs = Vec::new();
        for t in &texts {
            regs.push(engine.register_template(t).await?);
        }
        Ok(regs)
    })
    .await?;
    if ctx.json {
        return print_json(&regs);
    }
    let mut t = table(&["template", "version", "steps", "status", "id"], &[2]);
    for r in &regs {
        let rec = &r.template;
        t.add_row(vec![
            format!("{}/{}", rec.namespace, rec.name),
            rec.version.clone(),
            rec.template.steps.len().to_string(),
            if r.created {
                "registered".into()
            } else {
                "unchanged".to_string()
            },
            rec.id.to_string(),
        ]);
    }
    outln!("{t}");
    Ok(())
}

async fn list(ctx: &Ctx) -> CliResult {
    let all = with_engine(ctx, |engine| async move { Ok(engine.templates().await?) }).await?;
    if ctx.json {
        return print_json(&all);
    }
    if all.is_empty() {
        outln!("no templates registered; try `tasker template register --examples`");
        return Ok(());
    }
    let mut t = table(
        &["namespace", "name", "version", "steps", "registered", "content hash"],
        &[3],
    );
    for r in &all {
        t.add_row(vec![
            r.namespace.clone(),
            r.name.clone(),
            r.version.clone(),
            r.template.steps.len().to_string(),
            ts(r.created_at),
            r.content_hash.chars().take(12).collect(),
        ]);
    }
    outln!("{t}");
    Ok(())
}

async fn show(
    ctx: &Ctx,
    namespace: &str,
    name: &str,
    version: Option<&str>,
    format: Option<TemplateFormat>,
) -> CliResult {
    let rec = with_engine(ctx, |engine| async move {
        Ok(engine.template(namespace, name, version).await?)
    })
    .await?;
    let t = &rec.template;
    match format {
        Some(TemplateFormat::Yaml) => {
            let text = serde_yaml_ng::to_string(t)
                .map_err(|e| CliError::new(EXIT_FAILURE, format!("cannot encode the template as YAML: {e}")))?;
            out!("{text}");
            Ok(())
        }
        Some(TemplateFormat::Json) => print_json(t),
        Some(TemplateFormat::Mermaid) => {
            out!("{}", t.to_mermaid());
            Ok(())
        }
        Some(TemplateFormat::Dot) => {
            out!("{}", t.to_dot());
            Ok(())
        }
        None if ctx.json => print_json(&rec),
        None => {
            print_summary(&rec);
            Ok(())
        }
    }
}

fn print_summary(rec: &TemplateRecord) {
    let t = &rec.template;
    let mut rows = vec![
        ("template", format!("{}/{}@{}", rec.namespace, rec.name, rec.version)),
        ("id", rec.id.to_string()),
        ("registered", ts(rec.created_at)),
        ("content hash", rec.content_hash.clone()),
    ];
    if let Some(d) = &t.description {
        rows.push(("description", d.clone()));
    }
    if let Some(s) = &t.input_schema {
        rows.push(("input schema", schema_summary(s)));
    }
    outln!("{}", kv_table(rows));
    let levels = t.levels();
    let mut table = table(
        &["level", "step", "handler", "depends on", "retry", "timeout", "config"],
        &[0],
    );
    for i in t.topological_order() {
        let s = &t.steps[i];
        table.add_row(vec![
            levels.get(&s.name).map(|l| l.to_string()).unwrap_or_default(),
            s.name.clone(),
            s.handler.clone(),
            if s.depends_on.is_empty() {
                "-".into()
            } else {
                s.depends_on.join(", ")
            },
            retry_summary(s),
            format!("{} s", s.timeout_seconds),
            if s.config.as_object().is_some_and(|m| m.is_empty()) {
                "-".into()
            } else {
                s.config.to_string()
            },
        ]);
    }
    outln!("{table}");
}

/// The top-level properties with their types, required ones marked `*`; the full schema is one
/// `--format yaml` away and would swamp the table.
fn schema_summary(schema: &serde_json::Value) -> String {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(|r| r.as_array())
        .map(|r| r.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    let Some(props) = schema.get("properties").and_then(|p| p.as_object()) else {
        return crate::output::preview(schema, 100);
    };
    props
        .iter()
        .map(|(name, p)| {
            let ty = p.get("type").and_then(|t| t.as_str()).unwrap_or("any");
            let star = if required.contains(&name.as_str()) { "*" } else { "" };
            format!("{name}{star}: {ty}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// For example `3 attempts, exponential 100 ms..2000 ms ±10%`.
fn retry_summary(s: &StepTemplate) -> String {
    let r = &s.retry;
    if !r.retryable {
        return "not retryable".into();
    }
    let attempts = if r.max_attempts == 1 {
        "1 attempt".to_string()
    } else {
        format!("{} attempts", r.max_attempts)
    };
    let backoff = crate::output::snake(&r.backoff);
    if backoff == "none" {
        return format!("{attempts}, no backoff");
    }
    format!(
        "{attempts}, {backoff} {}..{} ms ±{:.0}%",
        r.base_ms,
        r.max_ms,
        r.jitter * 100.0
    )
}
