//! `rcompose schema`: the JSON Schema of the stack file, generated from the model.

use std::process::ExitCode;

/// Print the schema as pretty JSON (the content of `schema/rcompose.schema.json`).
pub fn run() -> anyhow::Result<ExitCode> {
    println!("{}", rcompose_spec::schema_json());
    Ok(ExitCode::SUCCESS)
}
