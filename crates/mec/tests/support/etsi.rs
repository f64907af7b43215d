//! Validation against the ETSI OpenAPI files in `tests/etsi/` (shared by the API's
//! conformance test and the command-line tests that run the demo with its API).
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;

use serde_json::{Value, json};

pub fn etsi_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../mec/tests/etsi")
}

pub fn load(name: &str) -> Value {
    let path = etsi_dir().join(name);
    let text = std::fs::read_to_string(&path).expect("spec file");
    let mut doc: Value = serde_norway::from_str(&text).expect("spec YAML");
    drop_type_beside_ref(&mut doc);
    doc
}

/// The generated v2.2.1 files put `type: object` beside many `$ref`s, also where the
/// referenced schema is a string (`CellId`) or an integer (`Trigger`). OpenAPI 3.0 ignores
/// siblings of `$ref`; JSON Schema 2020-12 (OpenAPI 3.1, which the files declare) applies
/// them, and no value could then be both. The `$ref` is what the specification means.
fn drop_type_beside_ref(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if m.contains_key("$ref") {
                m.remove("type");
            }
            m.values_mut().for_each(drop_type_beside_ref);
        }
        Value::Array(a) => a.iter_mut().for_each(drop_type_beside_ref),
        _ => {}
    }
}

/// Validators by schema name, over one OpenAPI document's components.
pub struct Spec {
    doc: Value,
}

impl Spec {
    pub fn new(doc: Value) -> Self {
        Self { doc }
    }

    /// Errors of `v` against `#/components/schemas/<name>`.
    pub fn errors(&self, name: &str, v: &Value) -> Vec<String> {
        let schema = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$ref": format!("#/components/schemas/{name}"),
            "components": self.doc["components"].clone(),
        });
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&schema)
            .unwrap_or_else(|e| panic!("schema {name}: {e}"));
        validator
            .iter_errors(v)
            .map(|e| format!("{name}: {e} at {}", e.instance_path()))
            .collect()
    }

    pub fn check(&self, name: &str, v: &Value) {
        let errors = self.errors(name, v);
        assert!(errors.is_empty(), "{v:#}\n{}", errors.join("\n"));
    }
}

pub struct Specs {
    pub ams: Spec,
    pub rnis: Spec,
    pub advantedge: Spec,
}

pub fn specs() -> Specs {
    let mut advantedge = load("AdvantEDGE-meep-ams-swagger.yaml");
    // AdvantEDGE's file types `adjacentAppInfo` as an object with `items`, its Go model
    // (and every notification it sends) as an array: the schema's one known slip.
    advantedge["components"]["schemas"]["AdjacentAppInfoNotification"]["properties"]["adjacentAppInfo"]
        ["type"] = json!("array");
    Specs {
        ams: Spec::new(load("MEC021_AppMobilityService.yaml")),
        rnis: Spec::new(load("RniAPI.yaml")),
        advantedge: Spec::new(advantedge),
    }
}
