//! The Ruby binding of Tasker Core: a thin magnus adapter over tasker-shared-ffi, with the skeleton every
//! binding shares (docs/bindings.md, "Adding a binding").
//!
//! This crate converts, calls and maps errors; it holds no SQL and no state, DAG or retry rule. The native
//! classes live under `TaskerCore::Internal`; lib/tasker_core/*.rb is the Ruby surface over them, and the
//! object classes (`TaskerCore::Task`, …) come from tasker-shared-ffi's object table. Every call that can
//! wait releases the GVL through [`blocking::blocking`], and nothing here calls Ruby from a Tokio thread:
//! the worker loop is Ruby's (lib/tasker_core/worker.rb).

use magnus::{prelude::*, Error, Ruby};

mod analytics;
mod blocking;
mod client;
mod convert;
mod errors;
mod events;
mod testing;
mod worker;

/// The Ruby API version (`major.minor`) whose headers this extension was compiled against. An extension is
/// only valid in the Ruby of that version: Ruby's C ABI changes between minor versions.
fn built_for_ruby() -> String {
    format!("{}.{}", rb_sys::RUBY_API_VERSION_MAJOR, rb_sys::RUBY_API_VERSION_MINOR)
}

/// Why an extension built for `built` must not run in a Ruby whose `RUBY_VERSION` is `running`, or `None`
/// when the two agree on `major.minor`.
fn abi_mismatch(built: &str, running: &str) -> Option<String> {
    let running_abi = running.split('.').take(2).collect::<Vec<_>>().join(".");
    (running_abi != built).then(|| {
        format!(
            "tasker_core: this native extension was built for Ruby {built}, but this is Ruby {running}; \
             reinstall the gem (or rebuild the extension) with this Ruby"
        )
    })
}

// The library file is installed as tasker_core.so, so Ruby looks for Init_tasker_core.
#[magnus::init(name = "tasker_core")]
fn register(ruby: &Ruby) -> Result<(), Error> {
    // First, before anything is defined: an extension compiled against another Ruby's headers would run with
    // the wrong struct layouts, so it refuses with a LoadError that says which two versions differ.
    let running: String = ruby.class_object().const_get("RUBY_VERSION")?;
    if let Some(why) = abi_mismatch(&built_for_ruby(), &running) {
        return Err(Error::new(ruby.exception_load_error(), why));
    }
    let top = ruby.define_module("TaskerCore")?;
    errors::register(ruby, top)?;
    convert::register(ruby, top)?;
    let internal = top.define_module("Internal")?;
    // lib/tasker_core/native.rb compares these with the Ruby code's own version after loading.
    internal.const_set("NATIVE_VERSION", env!("CARGO_PKG_VERSION"))?;
    internal.const_set("NATIVE_RUBY_ABI", built_for_ruby())?;
    client::register(ruby, internal)?;
    worker::register(ruby, internal)?;
    events::register(ruby, internal)?;
    analytics::register(ruby, internal)?;
    testing::register(ruby, internal)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extension_refuses_a_ruby_of_another_minor_version() {
        assert_eq!(abi_mismatch("3.1", "3.1.2"), None);
        assert_eq!(abi_mismatch("3.1", "3.1.0"), None);
        let why = abi_mismatch("3.1", "3.2.0").expect("3.1 and 3.2 differ");
        assert!(
            why.contains("built for Ruby 3.1") && why.contains("this is Ruby 3.2.0"),
            "{why}"
        );
        assert!(abi_mismatch("3.1", "3.10.0").is_some());
        assert!(abi_mismatch("3.1", "4.1.0").is_some());
    }
}
