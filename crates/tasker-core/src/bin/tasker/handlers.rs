//! The example handlers behind the templates in `examples/`: small but real work on the task context
//! and the parents' results, so that the demo exercises the engine the way a real workflow does.
//!
//! About one step in ten fails its first attempt with a retryable error, so that every demo shows
//! retries and backoff while every task still completes.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use tasker_core::worker::{handler_fn, Worker};
use tasker_core::{StepContext, StepFailure};
use uuid::Uuid;

type Run = fn(&StepContext) -> Result<Value, StepFailure>;

/// Every example handler key with its function.
const HANDLERS: [(&str, Run); 12] = [
    ("ecommerce.validate_order", validate_order),
    ("ecommerce.reserve_inventory", reserve_inventory),
    ("ecommerce.charge_payment", charge_payment),
    ("ecommerce.ship_order", ship_order),
    ("data.extract", extract),
    ("data.transform", transform),
    ("data.load", load),
    ("data.verify", verify),
    ("reports.fetch_regions", fetch_regions),
    ("reports.summarize_region", summarize_region),
    ("reports.compile_report", compile_report),
    ("demo.echo", echo),
];

/// Registers every example handler on `worker`.
pub fn register_examples(worker: &mut Worker) {
    for (key, run) in HANDLERS {
        worker.handle(
            key,
            handler_fn(move |ctx: StepContext| async move {
                if fails_first_attempt(ctx.step_id) && ctx.attempt == 1 {
                    return Err(StepFailure::retryable(format!(
                        "simulated transient failure of {} on attempt 1 (upstream timed out)",
                        ctx.step_name
                    ))
                    .with_code("demo_transient"));
                }
                run(&ctx)
            }),
        );
    }
}

/// Whether the demo makes this step fail its first attempt: about one step in ten, chosen by a hash of
/// the step id so that the choice is stable across re-runs of the attempt.
pub fn fails_first_attempt(step_id: Uuid) -> bool {
    Sha256::digest(step_id.as_bytes())[0] < 26
}

// ------------------------------------------------------------------------------------------ helpers

fn sha_hex(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        // A separator keeps ("ab", "c") and ("a", "bc") apart.
        h.update([0u8]);
    }
    hex::encode(h.finalize())
}

/// A number in `0..modulus` drawn from the hash of `parts`.
fn hash_mod(parts: &[&str], modulus: u64) -> u64 {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    let d = h.finalize();
    let n = u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]);
    n % modulus.max(1)
}

fn bad_input(message: String) -> StepFailure {
    StepFailure::permanent(message).with_code("bad_input")
}

fn get<'a>(v: &'a Value, path: &str, what: &str) -> Result<&'a Value, StepFailure> {
    v.get(path)
        .ok_or_else(|| bad_input(format!("{what}.{path}: is missing")))
}

fn get_str<'a>(v: &'a Value, path: &str, what: &str) -> Result<&'a str, StepFailure> {
    get(v, path, what)?
        .as_str()
        .ok_or_else(|| bad_input(format!("{what}.{path}: expected a string")))
}

fn get_u64(v: &Value, path: &str, what: &str) -> Result<u64, StepFailure> {
    get(v, path, what)?
        .as_u64()
        .ok_or_else(|| bad_input(format!("{what}.{path}: expected a non-negative integer")))
}

fn get_array<'a>(v: &'a Value, path: &str, what: &str) -> Result<&'a Vec<Value>, StepFailure> {
    get(v, path, what)?
        .as_array()
        .ok_or_else(|| bad_input(format!("{what}.{path}: expected a list")))
}

fn parent<'a>(ctx: &'a StepContext, name: &str) -> Result<&'a Value, StepFailure> {
    ctx.dependency_results.get(name).ok_or_else(|| {
        bad_input(format!(
            "dependency_results.{name}: is missing; is {name} a parent of this step?"
        ))
    })
}

fn config_list(ctx: &StepContext, key: &str) -> Result<Vec<String>, StepFailure> {
    let list = get_array(&ctx.config, key, "config")?;
    let names: Vec<String> = list.iter().filter_map(|v| v.as_str().map(str::to_string)).collect();
    if names.is_empty() || names.len() != list.len() {
        return Err(bad_input(format!("config.{key}: expected a non-empty list of strings")));
    }
    Ok(names)
}

fn config_u64(ctx: &StepContext, key: &str, default: u64) -> u64 {
    ctx.config.get(key).and_then(Value::as_u64).unwrap_or(default)
}

// ------------------------------------------------------------------------------------------ ecommerce

fn validate_order(ctx: &StepContext) -> Result<Value, StepFailure> {
    let c = &ctx.context;
    let order_id = get_str(c, "order_id", "context")?;
    let currency = get_str(c, "currency", "context")?;
    let items = get_array(c, "items", "context")?;
    let (mut subtotal, mut units) = (0u64, 0u64);
    for (i, item) in items.iter().enumerate() {
        let what = format!("context.items[{i}]");
        let q = get_u64(item, "quantity", &what)?;
        let p = get_u64(item, "unit_price_cents", &what)?;
        if q == 0 {
            return Err(bad_input(format!("{what}.quantity: expected at least 1")));
        }
        units += q;
        subtotal += q * p;
    }
    let tax = (subtotal * config_u64(ctx, "tax_rate_bps", 0) + 5_000) / 10_000;
    let shipping = if subtotal >= config_u64(ctx, "free_shipping_over_cents", u64::MAX) {
        0
    } else {
        config_u64(ctx, "shipping_cents", 0)
    };
    // The fingerprint covers the whole order, so a changed order never matches an old charge.
    let canonical = serde_json::to_string(c).unwrap_or_default();
    Ok(json!({
        "order_id": order_id,
        "currency": currency,
        "line_count": items.len(),
        "units": units,
        "subtotal_cents": subtotal,
        "tax_cents": tax,
        "shipping_cents": shipping,
        "total_cents": subtotal + tax + shipping,
        "fingerprint": &sha_hex(&[&canonical])[..16],
    }))
}

fn reserve_inventory(ctx: &StepContext) -> Result<Value, StepFailure> {
    let order = parent(ctx, "validate_order")?;
    let order_id = get_str(order, "order_id", "validate_order")?;
    let warehouses = config_list(ctx, "warehouses")?;
    let mut reservations = Vec::new();
    let mut used = std::collections::BTreeSet::new();
    let mut reserved = 0u64;
    for (i, item) in get_array(&ctx.context, "items", "context")?.iter().enumerate() {
        let what = format!("context.items[{i}]");
        let sku = get_str(item, "sku", &what)?;
        let qty = get_u64(item, "quantity", &what)?;
        let warehouse = &warehouses[hash_mod(&[sku], warehouses.len() as u64) as usize];
        used.insert(warehouse.clone());
        reserved += qty;
        reservations.push(json!({
            "sku": sku,
            "quantity": qty,
            "warehouse": warehouse,
            "reservation_id": format!("rsv-{}", &sha_hex(&[order_id, sku, &qty.to_string()])[..12]),
        }));
    }
    let expected = get_u64(order, "units", "validate_order")?;
    if reserved != expected {
        return Err(bad_input(format!(
            "reserved {reserved} units but the order has {expected}"
        )));
    }
    Ok(json!({ "reservations": reservations, "units_reserved": reserved, "warehouses": used }))
}

fn charge_payment(ctx: &StepContext) -> Result<Value, StepFailure> {
    let order = parent(ctx, "validate_order")?;
    let order_id = get_str(order, "order_id", "validate_order")?;
    let amount = get_u64(order, "total_cents", "validate_order")?;
    let currency = get_str(order, "currency", "validate_order")?;
    let fingerprint = get_str(order, "fingerprint", "validate_order")?;
    let gateway = ctx.config.get("gateway").and_then(Value::as_str).unwrap_or("demo-pay");
    // Keyed by the order and its fingerprint, not the attempt: a retried charge reuses the authorization.
    let auth = sha_hex(&[gateway, order_id, fingerprint, &amount.to_string(), currency]);
    Ok(json!({
        "gateway": gateway,
        "amount_cents": amount,
        "currency": currency,
        "authorization_code": format!("AUTH-{}", auth[..10].to_uppercase()),
    }))
}

fn ship_order(ctx: &StepContext) -> Result<Value, StepFailure> {
    let reservation = parent(ctx, "reserve_inventory")?;
    let payment = parent(ctx, "charge_payment")?;
    let auth = get_str(payment, "authorization_code", "charge_payment")?;
    let order_id = get_str(&ctx.context, "order_id", "context")?;
    let carriers = config_list(ctx, "carriers")?;
    let carrier = &carriers[hash_mod(&[order_id], carriers.len() as u64) as usize];
    let packages = get_array(reservation, "warehouses", "reserve_inventory")?.len();
    let digits = hash_mod(&[order_id, auth, carrier], 1_000_000_000_000);
    Ok(json!({
        "carrier": carrier,
        "tracking_number": format!("{}{digits:012}", carrier.to_uppercase()),
        "packages": packages,
        "units": get_u64(reservation, "units_reserved", "reserve_inventory")?,
        "authorization_code": auth,
    }))
}

// ------------------------------------------------------------------------------------------ data

/// The canonical line of one transformed row; transform and load both digest rows this way.
fn row_line(row: &Value) -> String {
    format!(
        "{}:{}:{}",
        row.get("id").and_then(Value::as_u64).unwrap_or_default(),
        row.get("category").and_then(Value::as_str).unwrap_or_default(),
        row.get("amount_cents").and_then(Value::as_u64).unwrap_or_default()
    )
}

fn rows_digest(rows: &[Value]) -> String {
    let mut h = Sha256::new();
    for r in rows {
        h.update(row_line(r).as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

fn extract(ctx: &StepContext) -> Result<Value, StepFailure> {
    let source = get_str(&ctx.context, "source", "context")?;
    let batch = get_u64(&ctx.context, "batch_id", "context")?.to_string();
    let count = get_u64(&ctx.context, "record_count", "context")?;
    const CATEGORIES: [&str; 4] = ["books", "games", "garden", "tools"];
    let records: Vec<Value> = (0..count)
        .map(|i| {
            let i_s = i.to_string();
            json!({
                "id": i + 1,
                "category": CATEGORIES[hash_mod(&[source, &batch, &i_s, "c"], 4) as usize],
                "amount_cents": hash_mod(&[source, &batch, &i_s, "a"], 20_000),
            })
        })
        .collect();
    Ok(json!({ "source": source, "batch_id": batch, "records": records }))
}

fn transform(ctx: &StepContext) -> Result<Value, StepFailure> {
    let extracted = parent(ctx, "extract")?;
    let records = get_array(extracted, "records", "extract")?;
    let floor = config_u64(ctx, "drop_below_cents", 0);
    let mut by_category: BTreeMap<String, u64> = BTreeMap::new();
    let rows: Vec<Value> = records
        .iter()
        .filter(|r| r.get("amount_cents").and_then(Value::as_u64).unwrap_or(0) >= floor)
        .cloned()
        .collect();
    for r in &rows {
        let cat = r
            .get("category")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_string();
        *by_category.entry(cat).or_default() += r.get("amount_cents").and_then(Value::as_u64).unwrap_or(0);
    }
    Ok(json!({
        "rows": rows,
        "kept": rows.len(),
        "dropped": records.len() - rows.len(),
        "totals_by_category_cents": by_category,
        "digest": rows_digest(&rows),
    }))
}

fn load(ctx: &StepContext) -> Result<Value, StepFailure> {
    let transformed = parent(ctx, "transform")?;
    let rows = get_array(transformed, "rows", "transform")?;
    let table = ctx
        .config
        .get("table")
        .and_then(Value::as_str)
        .unwrap_or("staging.rows");
    Ok(json!({
        "table": table,
        "rows_loaded": rows.len(),
        "checksum": rows_digest(rows),
        "expected_rows": get_u64(transformed, "kept", "transform")?,
        "expected_checksum": get_str(transformed, "digest", "transform")?,
    }))
}

fn verify(ctx: &StepContext) -> Result<Value, StepFailure> {
    let loaded = parent(ctx, "load")?;
    let rows = get_u64(loaded, "rows_loaded", "load")?;
    let expected_rows = get_u64(loaded, "expected_rows", "load")?;
    let checksum = get_str(loaded, "checksum", "load")?;
    let expected = get_str(loaded, "expected_checksum", "load")?;
    if rows != expected_rows || checksum != expected {
        return Err(StepFailure::permanent(format!(
            "load mismatch: {rows} rows with checksum {checksum}, expected {expected_rows} rows with {expected}"
        ))
        .with_code("verification_failed"));
    }
    Ok(json!({ "verified": true, "rows": rows, "checksum": checksum }))
}

// ------------------------------------------------------------------------------------------ reports

fn fetch_regions(ctx: &StepContext) -> Result<Value, StepFailure> {
    let date = get_str(&ctx.context, "report_date", "context")?;
    let size = ctx
        .context
        .get("sample_size")
        .and_then(Value::as_u64)
        .unwrap_or(config_u64(ctx, "default_sample_size", 50));
    let mut regions = Map::new();
    for region in config_list(ctx, "regions")? {
        let sales: Vec<u64> = (0..size)
            .map(|i| 100 + hash_mod(&[date, &region, &i.to_string()], 50_000))
            .collect();
        regions.insert(region, json!(sales));
    }
    Ok(json!({ "report_date": date, "regions": regions }))
}

fn summarize_region(ctx: &StepContext) -> Result<Value, StepFailure> {
    let region = get_str(&ctx.config, "region", "config")?;
    let fetched = parent(ctx, "fetch_regions")?;
    let sales = get(
        get(fetched, "regions", "fetch_regions")?,
        region,
        "fetch_regions.regions",
    )?
    .as_array()
    .ok_or_else(|| bad_input(format!("fetch_regions.regions.{region}: expected a list")))?;
    let mut amounts: Vec<u64> = sales.iter().filter_map(Value::as_u64).collect();
    if amounts.is_empty() {
        return Ok(json!({ "region": region, "count": 0, "total_cents": 0 }));
    }
    amounts.sort_unstable();
    let total: u64 = amounts.iter().sum();
    Ok(json!({
        "region": region,
        "count": amounts.len(),
        "total_cents": total,
        "mean_cents": total / amounts.len() as u64,
        "median_cents": amounts[(amounts.len() - 1) / 2],
        "min_cents": amounts[0],
        "max_cents": amounts[amounts.len() - 1],
    }))
}

fn compile_report(ctx: &StepContext) -> Result<Value, StepFailure> {
    let mut summaries: Vec<(&str, u64, u64)> = Vec::new();
    for (step, result) in &ctx.dependency_results {
        let region = get_str(result, "region", step)?;
        summaries.push((
            region,
            get_u64(result, "total_cents", step)?,
            get_u64(result, "count", step)?,
        ));
    }
    if summaries.is_empty() {
        return Err(bad_input(
            "dependency_results: expected at least one region summary".into(),
        ));
    }
    summaries.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let grand: u64 = summaries.iter().map(|s| s.1).sum();
    let top_n = config_u64(ctx, "top_n", 3) as usize;
    let ranking: Vec<Value> = summaries
        .iter()
        .enumerate()
        .map(|(i, (region, total, count))| {
            let share = if grand == 0 {
                0.0
            } else {
                (*total as f64 * 1000.0 / grand as f64).round() / 10.0
            };
            json!({ "rank": i + 1, "region": region, "total_cents": total, "sales": count, "share_pct": share })
        })
        .collect();
    let lines: Vec<String> = summaries.iter().map(|(r, t, c)| format!("{r}:{t}:{c}")).collect();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    Ok(json!({
        "report_date": get_str(&ctx.context, "report_date", "context")?,
        "currency": get_str(&ctx.context, "currency", "context")?,
        "grand_total_cents": grand,
        "top_regions": summaries.iter().take(top_n).map(|s| s.0).collect::<Vec<_>>(),
        "ranking": ranking,
        "digest": sha_hex(&lines),
    }))
}

// ------------------------------------------------------------------------------------------ generic

/// Returns the context, the config and the parents' results: handy for trying out templates by hand.
fn echo(ctx: &StepContext) -> Result<Value, StepFailure> {
    Ok(json!({
        "step": ctx.step_name,
        "attempt": ctx.attempt,
        "context": ctx.context,
        "config": ctx.config,
        "dependency_results": ctx.dependency_results,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn about_one_step_in_ten_fails_first() {
        let n = 10_000;
        let failing = (0..n).filter(|_| fails_first_attempt(Uuid::now_v7())).count();
        assert!((700..1300).contains(&failing), "{failing} of {n}");
    }
}
