//! `cargo xtask gen [--check]`: writes the object types of every host type file from tasker-shared-ffi's
//! object table, between `BEGIN GENERATED` and `END GENERATED` markers, so the hand-written rest of each file
//! (Client, Worker, …) stays as it is. `--check` writes nothing and fails when a file is stale; test-all runs
//! it, and the unit test below does the same in `cargo test`.
//!
//! The table is plain data; it is included here by path rather than by depending on tasker-shared-ffi, so
//! generating never builds the engine.

use std::fs;

use anyhow::{bail, Context, Result};

#[path = "../../crates/tasker-shared-ffi/src/objects/table.rs"]
#[allow(dead_code)]
mod table;

use table::{Kind, ObjectType, OBJECTS};

/// A region of a file that `gen` owns.
struct Region {
    path: &'static str,
    begin: &'static str,
    end: &'static str,
    render: fn() -> String,
}

const REGIONS: &[Region] = &[
    Region {
        path: "crates/tasker-python/python/tasker_core/_native.pyi",
        begin: "# BEGIN GENERATED: objects (cargo xtask gen, from tasker-shared-ffi's object table; do not edit)",
        end: "# END GENERATED: objects",
        render: python,
    },
    Region {
        path: "crates/tasker-ruby/sig/tasker_core.rbs",
        begin: "  # BEGIN GENERATED: objects (cargo xtask gen, from tasker-shared-ffi's object table; do not edit)",
        end: "  # END GENERATED: objects",
        render: ruby,
    },
    Region {
        path: "crates/tasker-node/index.d.ts",
        begin: "// BEGIN GENERATED: objects (cargo xtask gen, from tasker-shared-ffi's object table; do not edit)",
        end: "// END GENERATED: objects",
        render: typescript,
    },
    Region {
        path: "crates/tasker-wasm/index.d.ts",
        begin: "// BEGIN GENERATED: objects (cargo xtask gen, from tasker-shared-ffi's object table; do not edit)",
        end: "// END GENERATED: objects",
        render: typescript,
    },
    Region {
        path: "docs/bindings.md",
        begin:
            "<!-- BEGIN GENERATED: objects (cargo xtask gen, from tasker-shared-ffi's object table; do not edit) -->",
        end: "<!-- END GENERATED: objects -->",
        render: markdown,
    },
];

/// Regenerates every region and every generated Java file; with `check`, only reports the stale ones.
pub fn run(check: bool) -> Result<()> {
    let mut stale = Vec::new();
    for (path, fresh) in java_files() {
        if fs::read_to_string(&path).ok().as_deref() == Some(fresh.as_str()) {
            continue;
        }
        if check {
            stale.push(path);
        } else {
            fs::write(&path, fresh).with_context(|| format!("could not write {path}"))?;
            println!("wrote {path}");
        }
    }
    for r in REGIONS {
        let text = fs::read_to_string(r.path).with_context(|| format!("could not read {}", r.path))?;
        let fresh = splice(&text, r)?;
        if fresh == text {
            continue;
        }
        if check {
            stale.push(r.path.to_string());
        } else {
            fs::write(r.path, fresh).with_context(|| format!("could not write {}", r.path))?;
            println!("wrote {}", r.path);
        }
    }
    if !stale.is_empty() {
        bail!(
            "generated types are stale in {}; run `cargo xtask gen` and commit the result",
            stale.join(", ")
        );
    }
    Ok(())
}

/// `text` with the region between the markers replaced by a fresh rendering.
fn splice(text: &str, r: &Region) -> Result<String> {
    let start = text
        .find(r.begin)
        .with_context(|| format!("{}: no line `{}`", r.path, r.begin))?;
    let body = start + r.begin.len();
    let stop = text[body..]
        .find(r.end)
        .map(|i| body + i)
        .with_context(|| format!("{}: no line `{}` after the BEGIN marker", r.path, r.end))?;
    Ok(format!("{}\n{}{}", &text[..body], (r.render)(), &text[stop..]))
}

fn python_type(kind: &Kind) -> String {
    match kind {
        Kind::String => "str".into(),
        Kind::Integer => "int".into(),
        Kind::Float => "float".into(),
        Kind::Boolean => "bool".into(),
        Kind::Timestamp => "datetime".into(),
        Kind::Json => "Json".into(),
        Kind::Object(name) => (*name).into(),
        Kind::List(k) => format!("List[{}]", python_type(k)),
        Kind::Optional(k) => format!("Optional[{}]", python_type(k)),
        Kind::Map(k) => format!("Dict[str, {}]", python_type(k)),
    }
}

/// One class per object, under the hand-written `Object` base, with a read-only property per field.
fn python() -> String {
    let mut out = String::new();
    for o in OBJECTS {
        out += &format!("class {}(Object):\n    \"\"\"{}\"\"\"\n\n", o.name, o.doc);
        for f in o.fields {
            out += &format!(
                "    @property\n    def {}(self) -> {}: ...\n",
                f.name,
                python_type(&f.kind)
            );
        }
        out += "\n";
    }
    out
}

fn module_name(m: &str) -> String {
    m[..1].to_uppercase() + &m[1..]
}

fn ruby_type(kind: &Kind) -> String {
    match kind {
        Kind::String => "String".into(),
        Kind::Integer => "Integer".into(),
        Kind::Float => "Float".into(),
        Kind::Boolean => "bool".into(),
        Kind::Timestamp => "Time".into(),
        Kind::Json => "untyped".into(),
        Kind::Object(name) => match OBJECTS.iter().find(|o| o.name == *name).and_then(|o| o.module) {
            Some(m) => format!("{}::{name}", module_name(m)),
            None => (*name).into(),
        },
        Kind::List(k) => format!("Array[{}]", ruby_type(k)),
        Kind::Optional(k) if **k == Kind::Json => "untyped".into(),
        Kind::Optional(k) => format!("{}?", ruby_type(k)),
        Kind::Map(k) => format!("Hash[String, {}]", ruby_type(k)),
    }
}

/// The classes under `TaskerCore` first, then each module's, as the native extension defines them.
fn ruby() -> String {
    fn class(o: &ObjectType, indent: &str) -> String {
        let mut out = format!("{indent}# {}\n{indent}class {} < Model\n", o.doc, o.name);
        for f in o.fields {
            out += &format!("{indent}  attr_reader {}: {}\n", f.name, ruby_type(&f.kind));
        }
        out + &format!("{indent}end\n\n")
    }
    let mut out = String::new();
    for o in OBJECTS.iter().filter(|o| o.module.is_none()) {
        out += &class(o, "  ");
    }
    let mut modules: Vec<&str> = Vec::new();
    for m in OBJECTS.iter().filter_map(|o| o.module) {
        if !modules.contains(&m) {
            modules.push(m);
        }
    }
    for m in modules {
        out += &format!("  module {}\n", module_name(m));
        for o in OBJECTS.iter().filter(|o| o.module == Some(m)) {
            out += &class(o, "    ");
        }
        out = out.trim_end().to_string() + "\n  end\n\n";
    }
    out
}

/// docs/bindings.md §4: one field table per object.
/// The JS spelling of a table field (crates/tasker-node/src/convert.rs lowers objects with the same rule).
fn camel(name: &str) -> String {
    let mut parts = name.split('_');
    let first = parts.next().unwrap_or_default().to_string();
    parts.fold(first, |acc, p| acc + &p[..1].to_uppercase() + &p[1..])
}

fn typescript_type(kind: &Kind) -> String {
    match kind {
        Kind::String => "string".into(),
        Kind::Integer | Kind::Float => "number".into(),
        Kind::Boolean => "boolean".into(),
        Kind::Timestamp => "Date".into(),
        Kind::Json => "Json".into(),
        Kind::Object(name) => (*name).into(),
        Kind::List(k) => match **k {
            Kind::Optional(_) => format!("Array<{}>", typescript_type(k)),
            _ => format!("{}[]", typescript_type(k)),
        },
        Kind::Optional(k) => format!("{} | null", typescript_type(k)),
        Kind::Map(k) => format!("Record<string, {}>", typescript_type(k)),
    }
}

/// One interface per object, the plain objects the Node binding returns: camelCased, read-only fields.
fn typescript() -> String {
    let mut out = String::new();
    for o in OBJECTS {
        out += &format!("/** {} */\nexport interface {} {{\n", o.doc, o.name);
        for f in o.fields {
            if !f.doc.is_empty() {
                out += &format!("  /** {} */\n", f.doc);
            }
            out += &format!("  readonly {}: {}\n", camel(f.name), typescript_type(&f.kind));
        }
        out += "}\n\n";
    }
    out
}

/// Where the Java sources of the JVM binding live.
pub const JAVA_DIR: &str = "crates/tasker-jvm/src/main/java/io/tasker/core";

fn java_type(kind: &Kind, boxed: bool) -> String {
    match kind {
        Kind::String => "String".into(),
        Kind::Integer => if boxed { "Long" } else { "long" }.into(),
        Kind::Float => if boxed { "Double" } else { "double" }.into(),
        Kind::Boolean => if boxed { "Boolean" } else { "boolean" }.into(),
        Kind::Timestamp => "Instant".into(),
        Kind::Json => "Object".into(),
        Kind::Object(name) => (*name).into(),
        Kind::List(k) => format!("List<{}>", java_type(k, true)),
        Kind::Optional(k) => java_type(k, true),
        Kind::Map(k) => format!("Map<String, {}>", java_type(k, true)),
    }
}

const JAVA_HEADER: &str =
    "// GENERATED by `cargo xtask gen` from tasker-shared-ffi's object table; do not edit.\npackage io.tasker.core;\n\n";

/// Every generated Java file: one record per object (camelCased components, `toMap()` of plain data with
/// the table's field names) and `Records`, whose `make(index, fields)` the adapter calls to build the record
/// of `OBJECTS[index]` from its fields in table order.
fn java_files() -> Vec<(String, String)> {
    let mut files = Vec::new();
    let mut make = String::new();
    for (index, o) in OBJECTS.iter().enumerate() {
        let mut out = format!(
            "{JAVA_HEADER}import java.time.Instant;\nimport java.util.LinkedHashMap;\nimport java.util.List;\nimport java.util.Map;\n\n"
        );
        out += &format!("/**\n * {}\n *\n", o.doc);
        for f in o.fields {
            let doc = if f.doc.is_empty() {
                f.kind.describe()
            } else {
                format!("{}: {}", f.kind.describe(), f.doc)
            };
            out += &format!(" * @param {} {}\n", camel(f.name), doc.replace('`', ""));
        }
        out += &format!(" */\npublic record {}(\n", o.name);
        let params: Vec<String> = o
            .fields
            .iter()
            .map(|f| format!("    {} {}", java_type(&f.kind, false), camel(f.name)))
            .collect();
        out += &params.join(",\n");
        out += ") implements TaskerObject {\n    @Override\n    public Map<String, Object> toMap() {\n";
        out += "        Map<String, Object> m = new LinkedHashMap<>();\n";
        for f in o.fields {
            out += &format!("        m.put(\"{}\", Records.plain({}));\n", f.name, camel(f.name));
        }
        out += "        return m;\n    }\n}\n";
        files.push((format!("{JAVA_DIR}/{}.java", o.name), out));
        let args: Vec<String> = o
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| match java_type(&f.kind, true).as_str() {
                "Object" => format!("f[{i}]"),
                t => format!("({t}) f[{i}]"),
            })
            .collect();
        make += &format!(
            "            case {index} -> new {}(\n                    {});\n",
            o.name,
            args.join(",\n                    ")
        );
    }
    let records = format!(
        "{JAVA_HEADER}import java.time.Instant;\nimport java.util.ArrayList;\nimport java.util.LinkedHashMap;\n\
         import java.util.List;\nimport java.util.Map;\n\n\
         /** Builds the records of the object table for the native adapter, and turns them back into plain data. */\n\
         final class Records {{\n    private Records() {{}}\n\n\
         \x20   /** The record of object {{@code index}} of the table, from its fields in table order. */\n\
         \x20   @SuppressWarnings(\"unchecked\")\n    static Object make(int index, Object[] f) {{\n\
         \x20       return switch (index) {{\n{make}\
         \x20           default -> throw new IllegalArgumentException(\"no object \" + index + \" in the table\");\n\
         \x20       }};\n    }}\n\n\
         \x20   /** Plain data: records as maps (their {{@code toMap()}}), lists and maps element by element. */\n\
         \x20   static Object plain(Object v) {{\n\
         \x20       if (v instanceof TaskerObject o) return o.toMap();\n\
         \x20       if (v instanceof List<?> l) {{\n\
         \x20           List<Object> out = new ArrayList<>(l.size());\n\
         \x20           for (Object x : l) out.add(plain(x));\n\
         \x20           return out;\n        }}\n\
         \x20       if (v instanceof Map<?, ?> m) {{\n\
         \x20           Map<String, Object> out = new LinkedHashMap<>();\n\
         \x20           for (Map.Entry<?, ?> e : m.entrySet()) out.put((String) e.getKey(), plain(e.getValue()));\n\
         \x20           return out;\n        }}\n\
         \x20       return v;\n    }}\n\n\
         \x20   /** Names of the table's objects, in order. */\n\
         \x20   static final List<String> NAMES = List.of({});\n}}\n",
        OBJECTS
            .iter()
            .map(|o| format!("\"{}\"", o.name))
            .collect::<Vec<_>>()
            .join(", ")
    );
    files.push((format!("{JAVA_DIR}/Records.java"), records));
    files
}

fn markdown() -> String {
    let mut out = String::new();
    for o in OBJECTS {
        out += &format!("### `{}`\n\n{}", o.name, o.doc);
        if let Some(m) = o.module {
            out += &format!(
                " Grouped under `{m}`: `TaskerCore::{}::{}` in Ruby, also `tasker_core.{m}.{}` in Python.",
                module_name(m),
                o.name,
                o.name
            );
        }
        out += "\n\n| Field | Kind | Notes |\n|---|---|---|\n";
        for f in o.fields {
            let kind = match f.kind {
                Kind::Object(n) => format!("[`{n}`](#{})", n.to_lowercase()),
                Kind::List(Kind::Object(n)) => format!("list of [`{n}`](#{})", n.to_lowercase()),
                Kind::Optional(Kind::Object(n)) => format!("optional [`{n}`](#{})", n.to_lowercase()),
                k => k.describe(),
            };
            out += &format!("| `{}` | {kind} | {} |\n", f.name, f.doc);
        }
        out += "\n";
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// The committed host type files match the table: the same check as `cargo xtask gen --check`.
    #[test]
    fn generated_regions_are_fresh() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        for (path, fresh) in java_files() {
            let text = fs::read_to_string(root.join(&path)).unwrap_or_default();
            assert!(
                fresh == text,
                "{path} is stale: run `cargo xtask gen` and commit the result"
            );
        }
        for r in REGIONS {
            let text = fs::read_to_string(root.join(r.path)).unwrap();
            let fresh = splice(&text, r).unwrap();
            assert!(
                fresh == text,
                "{} is stale: run `cargo xtask gen` and commit the result",
                r.path
            );
        }
    }

    #[test]
    fn splice_replaces_only_the_region_and_needs_both_markers() {
        let r = Region {
            path: "x",
            begin: "<<",
            end: ">>",
            render: || "new\n".to_string(),
        };
        assert_eq!(splice("a\n<<\nold\n>>\nb\n", &r).unwrap(), "a\n<<\nnew\n>>\nb\n");
        assert!(splice("a\n<<\nold\n", &r).is_err());
        assert!(splice("a\n", &r).is_err());
    }

    #[test]
    fn kinds_map_to_host_types() {
        let k = Kind::Optional(&Kind::List(&Kind::Object("SlowStep")));
        assert_eq!(python_type(&k), "Optional[List[SlowStep]]");
        assert_eq!(ruby_type(&k), "Array[Performance::SlowStep]?");
        assert_eq!(ruby_type(&Kind::Map(&Kind::Integer)), "Hash[String, Integer]");
        assert_eq!(ruby_type(&Kind::Optional(&Kind::Json)), "untyped");
        assert_eq!(typescript_type(&k), "SlowStep[] | null");
        assert_eq!(typescript_type(&Kind::Map(&Kind::Json)), "Record<string, Json>");
        assert_eq!(camel("dependency_results"), "dependencyResults");
        assert_eq!(java_type(&k, false), "List<SlowStep>");
        assert_eq!(java_type(&Kind::Optional(&Kind::Integer), false), "Long");
        assert_eq!(java_type(&Kind::Map(&Kind::Json), false), "Map<String, Object>");
    }
}
