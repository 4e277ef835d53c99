//! The client's analytics methods (DESIGN §5), in tasker-shared-ffi's order; TaskerClient.java exposes them
//! with `java.time.Instant` windows and `AnalyticsFilter` maps.

use jni::objects::{JClass, JObject};
use jni::sys::{jlong, jobject};

use crate::blocking::Env;
use crate::client::{by_id, call, plain};
use crate::convert::{count, lift_options, lift_time, string};

by_id! {
    execution_context("taskId") => execution_context,
    dependency_levels("taskId") => dependency_levels,
}

plain!(health_counts);

/// Metrics of the work finished since `sinceMs` (epoch milliseconds).
extern "system" fn analytics_metrics(mut env: Env, _: JClass, h: jlong, since_ms: jlong) -> jobject {
    call(&mut env, h, |_, c| {
        Ok(c.analytics_metrics(lift_time(since_ms, "since")?))
    })
}

extern "system" fn slowest_steps(mut env: Env, _: JClass, h: jlong, filter: JObject, n: jlong) -> jobject {
    call(&mut env, h, |env, c| {
        Ok(c.slowest_steps(lift_options(env, &filter, "filter")?, count(n) as usize))
    })
}

extern "system" fn slowest_tasks(mut env: Env, _: JClass, h: jlong, filter: JObject, n: jlong) -> jobject {
    call(&mut env, h, |env, c| {
        Ok(c.slowest_tasks(lift_options(env, &filter, "filter")?, count(n) as usize))
    })
}

crate::natives![
    "executionContext"("JO") -> 'O' = execution_context,
    "dependencyLevels"("JO") -> 'O' = dependency_levels,
    "healthCounts"("J") -> 'O' = health_counts,
    "analyticsMetrics"("JJ") -> 'O' = analytics_metrics,
    "slowestSteps"("JOJ") -> 'O' = slowest_steps,
    "slowestTasks"("JOJ") -> 'O' = slowest_tasks,
];
