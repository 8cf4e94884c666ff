//! The MCP tool list: names, descriptions and input schemas. The memory
//! tools' schemas are exactly those of INTEROP.md (claude-flow v2 and v3);
//! every other tool mirrors the JSON-RPC method of the same name.

use std::sync::Arc;

use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use serde_json::{json, Value};

fn obj(v: Value) -> Arc<JsonObject> {
    match v {
        Value::Object(m) => Arc::new(m),
        _ => Arc::new(JsonObject::new()),
    }
}

fn tool(name: &'static str, description: &'static str, schema: Value, read_only: bool) -> Tool {
    Tool::new(name, description, obj(schema)).with_annotations(
        ToolAnnotations::new()
            .read_only(read_only)
            .destructive(
                name.ends_with("_delete") || name.ends_with("_restore") || name.ends_with("_prune"),
            )
            .open_world(false),
    )
}

/// Every tool this server offers; each name is also a JSON-RPC method.
pub fn all() -> Vec<Tool> {
    let s = || json!({"type": "string"});
    vec![
        tool("memory_usage",
            "claude-flow v2 memory tool: store, retrieve, list, delete or search (substring) entries of a namespace in the durable swarm memory. TTL in seconds.",
            json!({"type":"object","required":["action"],"properties":{
                "action":{"type":"string","enum":["store","retrieve","list","delete","search"]},
                "key":{"type":"string"},
                "value":{"type":"string"},
                "namespace":{"type":"string","default":"default"},
                "ttl":{"type":"number"}}}), false),
        tool("memory_store",
            "Store a value under a key in a namespace. Storing an existing key is an error unless upsert is true.",
            json!({"type":"object","required":["key","value"],"properties":{
                "key":{"type":"string","description":"Entry key"},
                "value":{"description":"Value: a string or a JSON object","type":["string","object"]},
                "namespace":{"type":"string","default":"default"},
                "tags":{"type":"array","items":{"type":"string"}},
                "ttl":{"type":"number","description":"Time to live in seconds"},
                "upsert":{"type":"boolean","default":false}}}), false),
        tool("memory_retrieve", "Read one entry by key.",
            json!({"type":"object","required":["key"],"properties":{
                "key":{"type":"string"},"namespace":{"type":"string","default":"default"}}}), true),
        tool("memory_search",
            "Rank entries by relevance to a query (BM25 over the words of key and value, scores 0..1). Without namespace, searches all namespaces.",
            json!({"type":"object","required":["query"],"properties":{
                "query":{"type":"string"},
                "namespace":{"type":"string"},
                "limit":{"type":"number","default":10},
                "threshold":{"type":"number","minimum":0,"maximum":1,"default":0.3}}}), true),
        tool("memory_delete", "Delete one entry by key.",
            json!({"type":"object","required":["key"],"properties":{
                "key":{"type":"string"},"namespace":{"type":"string","default":"default"}}}), false),
        tool("memory_list", "List entries, newest first; filter by namespace and by tags (an entry must carry all of them).",
            json!({"type":"object","properties":{
                "namespace":{"type":"string"},
                "limit":{"type":"number","default":100},
                "tags":{"type":"array","items":{"type":"string"}}}}), true),
        tool("memory_stats", "Entries, namespaces in use, bytes on disk and backend of the memory store.",
            json!({"type":"object","properties":{}}), true),
        tool("storage_write", "Write a key/value pair (or several atomically with entries).",
            json!({"type":"object","properties":{"key":s(),"value":s(),
                "entries":{"type":"array","items":{"type":"object","required":["key","value"],
                    "properties":{"key":s(),"value":s()}}}}}), false),
        tool("storage_read", "Read the value of a key.",
            json!({"type":"object","required":["key"],"properties":{"key":s()}}), true),
        tool("storage_delete", "Delete a key (or several atomically with keys).",
            json!({"type":"object","properties":{"key":s(),"keys":{"type":"array","items":s()}}}), false),
        tool("storage_scan", "List keys with a prefix in key order, a page at a time (pass next_cursor back as cursor).",
            json!({"type":"object","properties":{"prefix":s(),
                "limit":{"type":"integer","minimum":1,"maximum":10000,"default":100},"cursor":s()}}), true),
        tool("storage_stats", "Store size, column families, counters, actor states and published records; detailed adds every metric (WAL sync latency, cache hit rate, compaction, disk, snapshots).",
            json!({"type":"object","properties":{"detailed":{"type":"boolean","default":false}}}), true),
        tool("collection_create", "Create a vector collection with a dimension and metric (cosine, euclidean, dot).",
            json!({"type":"object","required":["name","dimension"],"properties":{"name":s(),
                "dimension":{"type":"integer","minimum":1},
                "metric":{"type":"string","enum":["cosine","euclidean","dot"],"default":"cosine"}}}), false),
        tool("collection_list", "List vector collections with their vector counts.",
            json!({"type":"object","properties":{}}), true),
        tool("vector_upsert", "Insert or replace vectors (JSON arrays or base64 little-endian f32) with optional metadata objects; all-or-nothing.",
            json!({"type":"object","required":["collection","vectors"],"properties":{"collection":s(),
                "vectors":{"type":"array","items":{"type":"object","required":["id"],"properties":{
                    "id":s(),"vector":{"type":"array","items":{"type":"number"}},
                    "vector_b64":s(),"metadata":{"type":"object"}}}}}}), false),
        tool("vector_get", "Fetch vectors and metadata by id.",
            json!({"type":"object","required":["collection","ids"],"properties":{"collection":s(),
                "ids":{"type":"array","items":s()},
                "include_vector":{"type":"boolean","default":true},
                "encoding":{"type":"string","enum":["json","base64"],"default":"json"}}}), true),
        tool("vector_delete", "Delete vectors (and their metadata) by id; all-or-nothing.",
            json!({"type":"object","required":["collection","ids"],"properties":{"collection":s(),
                "ids":{"type":"array","items":s()}}}), false),
        tool("system_health", "Daemon health: overall status, version, pid and each actor's state.",
            json!({"type":"object","properties":{}}), true),
        tool("wal_checkpoint", "Flush memtables to SST files and fsync the WAL.",
            json!({"type":"object","properties":{"force":{"type":"boolean","default":false}}}), false),
        tool("snapshot_create", "Create a point-in-time snapshot (RocksDB checkpoint, hard links) with a checksummed manifest.",
            json!({"type":"object","properties":{"name":s(),
                "verify":{"type":"boolean","default":false,"description":"Verify right after creating"}}}), false),
        tool("snapshot_list", "List snapshots; with_size adds the bytes each one alone holds (its delta).",
            json!({"type":"object","properties":{"with_size":{"type":"boolean","default":false}}}), true),
        tool("snapshot_restore", "Replace the live store with a snapshot (the replaced state is kept as an undo snapshot).",
            json!({"type":"object","required":["name"],"properties":{"name":s()}}), false),
        tool("snapshot_delete", "Delete a snapshot; refuses without confirm: true.",
            json!({"type":"object","required":["name"],"properties":{"name":s(),
                "confirm":{"type":"boolean","default":false}}}), false),
        tool("snapshot_verify", "Re-check every file checksum of a snapshot and read all of it (default: newest).",
            json!({"type":"object","properties":{"name":s()}}), true),
        tool("snapshot_prune", "Apply a retention policy (restic's keep-* rules); dry-run prints the plan only.",
            json!({"type":"object","properties":{
                "dry-run":{"type":"boolean","default":false},
                "keep-last":{"type":"integer","minimum":0},"keep-hourly":{"type":"integer","minimum":0},
                "keep-daily":{"type":"integer","minimum":0},"keep-weekly":{"type":"integer","minimum":0},
                "keep-monthly":{"type":"integer","minimum":0},
                "keep-within":{"type":"string","description":"e.g. 36h, 7d, 2w"}}}), false),
        tool("schedule_list", "Cron jobs with last run, next run and last result.",
            json!({"type":"object","properties":{}}), true),
        tool("backup_create", "Back up the store to object storage (file://, s3://, az://, gs://): content-addressed objects, so unchanged files are not uploaded again; the manifest is written last.",
            json!({"type":"object","properties":{"destination":s(),"name":s(),
                "full":{"type":"boolean","default":false},"incremental":{"type":"boolean","default":true},
                "method":{"type":"string","enum":["auto","files","wal"],"default":"auto","description":"incremental as new checkpoint files, or as the archived WAL since the base backup"},
                "encrypt":{"type":"boolean","default":false}}}), false),
        tool("backup_list", "List the backups in a location, oldest first.",
            json!({"type":"object","properties":{"location":s()}}), true),
        tool("backup_verify", "Check a backup's objects (presence and size; with read_data every SHA-256, or a share with read_data_subset like \"10%\").",
            json!({"type":"object","properties":{"location":s(),"name":s(),
                "read_data":{"type":"boolean","default":false},"read_data_subset":s()}}), true),
        tool("backup_restore", "Restore a backup (default: the newest) into the running daemon, or into an empty directory with to.",
            json!({"type":"object","properties":{"from":s(),"name":s(),"to":s(),
                "force":{"type":"boolean","default":false},
                "to_sequence":{"type":"integer","minimum":0,"description":"point-in-time: replay the WAL archive up to this sequence"},
                "to_time":{"type":"string","description":"point-in-time: RFC 3339 or epoch ms"}}}), false),
        tool("backup_prune", "Delete backups by keep-* rules (plan first with dry-run); never deletes an object a kept backup uses, nor WAL a kept backup or the PITR window needs.",
            json!({"type":"object","properties":{"location":s(),
                "dry-run":{"type":"boolean","default":false},
                "keep-last":{"type":"integer","minimum":0},"keep-hourly":{"type":"integer","minimum":0},
                "keep-daily":{"type":"integer","minimum":0},"keep-weekly":{"type":"integer","minimum":0},
                "keep-monthly":{"type":"integer","minimum":0},
                "keep-within":{"type":"string","description":"e.g. 36h, 7d, 2w"}}}), false),
        tool("backup_copy", "Replicate backups (and the WAL archive) to a second location, incrementally.",
            json!({"type":"object","required":["to"],"properties":{"from":s(),"to":s(),"name":s()}}), false),
        tool("backup_status", "The running backup, restore or drill: phase, files and bytes done of total; and the last one's final figures.",
            json!({"type":"object","properties":{}}), true),
        tool("backup_drill", "Restore drill: restore the newest backup into a scratch directory, open and read it all, publish the result, delete the scratch.",
            json!({"type":"object","properties":{}}), false),
        tool("wal_archive", "Ship the committed WAL batches not yet archived to the target (one pass; the daemon also archives continuously with [backup] archive-wal).",
            json!({"type":"object","properties":{"to":s()}}), false),
        tool("wal_replay", "Read archived changes after a sequence from the WAL archive, as change events.",
            json!({"type":"object","required":["from_sequence"],"properties":{"from":s(),
                "from_sequence":{"type":"integer","minimum":0},"limit":{"type":"integer","minimum":1,"default":1000}}}), true),
        tool("index_upload", "Append a chunk (base64, at most 8 MiB) to an index upload: omit upload_id to start one at offset 0, then pass it with offset = bytes sent so far. Finish with index_commit.",
            json!({"type":"object","required":["name","data"],"properties":{"name":s(),
                "upload_id":s(),"offset":{"type":"integer","minimum":0,"default":0},
                "data":{"type":"string","contentEncoding":"base64"}}}), false),
        tool("index_commit", "Make an upload the content of an index (HNSW, IVF, …), checking size and SHA-256; replaces the previous content atomically.",
            json!({"type":"object","required":["name","upload_id","index_type"],"properties":{"name":s(),
                "upload_id":s(),"index_type":s(),"size":{"type":"integer","minimum":0},
                "sha256":s(),"source":s(),"metadata":{"type":"object"}}}), false),
        tool("index_read", "Read a stored index: up to length bytes (at most 8 MiB) from offset, base64, with its size and SHA-256.",
            json!({"type":"object","required":["name"],"properties":{"name":s(),
                "offset":{"type":"integer","minimum":0,"default":0},
                "length":{"type":"integer","minimum":1},
                "sha256":{"type":"string","description":"refuse if the index was replaced: pass the sha256 the first call returned"}}}), true),
        tool("index_list", "Stored indexes (type, size, SHA-256, commit time) and unfinished uploads.",
            json!({"type":"object","properties":{}}), true),
        tool("index_delete", "Delete a stored index, or abandon one of its unfinished uploads (upload_id).",
            json!({"type":"object","required":["name"],"properties":{"name":s(),"upload_id":s()}}), false),
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_tool_is_an_rpc_method_and_back() {
        let tools = super::all();
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
        for m in crate::ops::METHODS {
            assert!(names.contains(m), "method {m} has no MCP tool");
        }
        for n in &names {
            assert!(
                crate::ops::METHODS.contains(n),
                "tool {n} has no RPC method"
            );
        }
    }
}
