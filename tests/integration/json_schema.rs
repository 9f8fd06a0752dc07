//! A small JSON Schema checker for the schemas `cargo hot schema` prints.
//!
//! It knows exactly the keywords schemars emits for our types (`type`, `properties`,
//! `required`, `items`, `enum`, `const`, `oneOf`, `anyOf`, `$ref` into `$defs`, and the
//! annotations `format`, `minimum`, `description`, `title`) and panics on any other, so a
//! schema it cannot judge fails the test instead of passing unchecked. The `jsonschema`
//! crate would do the same job with some forty more crates to compile on every CI run; for a
//! vocabulary this small, a hundred lines we can read are the better trade.

use serde_json::Value;

const ANNOTATIONS: &[&str] = &["$schema", "title", "description", "format", "$defs"];

/// Every reason `instance` does not satisfy `schema` (empty: it does).
pub fn errors(schema: &Value, instance: &Value) -> Vec<String> {
    let mut out = Vec::new();
    check(schema, schema, instance, "", &mut out);
    out
}

fn check(root: &Value, schema: &Value, value: &Value, at: &str, out: &mut Vec<String>) {
    let Some(schema) = schema.as_object() else {
        panic!("schema at {at} is not an object: {schema}");
    };
    for (keyword, rule) in schema {
        match keyword.as_str() {
            k if ANNOTATIONS.contains(&k) => {}
            "$ref" => {
                let name = rule
                    .as_str()
                    .and_then(|r| r.strip_prefix("#/$defs/"))
                    .unwrap_or_else(|| panic!("unsupported $ref {rule}"));
                let target = &root["$defs"][name];
                assert!(!target.is_null(), "$ref to a missing definition {name}");
                check(root, target, value, at, out);
            }
            "type" => {
                let types: Vec<&str> = match rule {
                    Value::String(t) => vec![t.as_str()],
                    Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                    other => panic!("unsupported type {other}"),
                };
                if !types.iter().any(|t| has_type(value, t)) {
                    out.push(format!("{at}: expected {types:?}, found {value}"));
                }
            }
            "minimum" => {
                let min = rule.as_f64().expect("numeric minimum");
                if value.as_f64().is_some_and(|n| n < min) {
                    out.push(format!("{at}: {value} is below {min}"));
                }
            }
            "const" => {
                if value != rule {
                    out.push(format!("{at}: expected {rule}, found {value}"));
                }
            }
            "enum" => {
                let allowed = rule.as_array().expect("enum is an array");
                if !allowed.contains(value) {
                    out.push(format!("{at}: {value} is not one of {rule}"));
                }
            }
            "required" => {
                if let Some(object) = value.as_object() {
                    for name in rule.as_array().expect("required is an array") {
                        let name = name.as_str().expect("required names are strings");
                        if !object.contains_key(name) {
                            out.push(format!("{at}: missing required field `{name}`"));
                        }
                    }
                }
            }
            "properties" => {
                if let Some(object) = value.as_object() {
                    for (name, sub) in rule.as_object().expect("properties is an object") {
                        if let Some(field) = object.get(name) {
                            check(root, sub, field, &format!("{at}.{name}"), out);
                        }
                    }
                }
            }
            "items" => {
                if let Some(items) = value.as_array() {
                    for (i, item) in items.iter().enumerate() {
                        check(root, rule, item, &format!("{at}[{i}]"), out);
                    }
                }
            }
            "oneOf" | "anyOf" => {
                let branches = rule.as_array().expect("oneOf/anyOf is an array");
                let passing = branches
                    .iter()
                    .filter(|b| {
                        let mut errs = Vec::new();
                        check(root, b, value, at, &mut errs);
                        errs.is_empty()
                    })
                    .count();
                let ok = if keyword == "oneOf" {
                    passing == 1
                } else {
                    passing >= 1
                };
                if !ok {
                    out.push(format!(
                        "{at}: {passing} of the {keyword} branches match {value}"
                    ));
                }
            }
            other => panic!("the checker does not know the keyword `{other}`: extend it"),
        }
    }
}

fn has_type(value: &Value, t: &str) -> bool {
    match t {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        other => panic!("unknown type {other}"),
    }
}
