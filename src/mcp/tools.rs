//! The MCP tool list, generated from the operation table: each operation
//! is a tool of the same name, its description the params type's doc
//! comment, its input schema the params type's schema. The claude-flow
//! memory tools keep exactly INTEROP.md's schemas (tested in `ops`).

use std::sync::Arc;

use rmcp::model::{Tool, ToolAnnotations};
use serde_json::Value;

use crate::ops::{Effect, OpInfo, OPS};

/// The tool of one operation.
pub fn tool(op: &OpInfo) -> Tool {
    let mut schema = (op.schema)();
    let description = match schema.remove("description") {
        Some(Value::String(s)) => s,
        _ => String::new(),
    };
    Tool::new(op.method, description, Arc::new(schema)).with_annotations(
        ToolAnnotations::new()
            .read_only(op.effect == Effect::ReadOnly)
            .destructive(op.effect == Effect::Destructive)
            .open_world(false),
    )
}

/// Every tool this server offers; each name is also a JSON-RPC method.
pub fn all() -> Vec<Tool> {
    OPS.iter().map(tool).collect()
}
