//! Listing: `SCAN` (on every master of a cluster), sort by name, page, then `MGET` in batches.
//! The watch's poll uses the same reads.

use std::collections::HashMap;

use flipper_core::ItemError;
use futures_util::future::try_join_all;
use redis::{Cmd, FromRedisValue, Value};

use super::{Conn, RedisStore, not_a_string};
use crate::error::Result;
use crate::store::{CorruptEntry, ListEntry, page};

/// `s` with Redis glob characters (`* ? [ ] \`) escaped, to match itself only.
pub(super) fn escape_glob(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The glob matching every key under `base_key` (for `SCAN MATCH` and `PSUBSCRIBE`).
pub(super) fn key_pattern(base_key: &str) -> String {
    format!("{}/*", escape_glob(base_key))
}

/// A cluster node, as `CLUSTER SLOTS` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(not(feature = "redis-cluster"), allow(dead_code))]
pub(super) struct Node {
    pub(super) host: String,
    pub(super) port: u16,
}

/// Runs a command: on `node` of a cluster when given, else where the connection routes it.
pub(super) async fn query_on<T: FromRedisValue>(
    store: &RedisStore,
    conn: &mut Conn,
    cmd: Cmd,
    node: Option<&Node>,
) -> Result<T> {
    let reply = match (conn, node) {
        #[cfg(feature = "redis-cluster")]
        (Conn::Cluster(cluster), Some(node)) => {
            use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
            let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                host: node.host.clone(),
                port: node.port,
            });
            cluster.route_command(cmd, route).await
        }
        (conn, _) => cmd.query_async::<Value>(conn).await,
    }
    .map_err(|e| store.backend(e))?;
    T::from_redis_value(reply).map_err(|e| store.backend(e))
}

/// The masters of a cluster (`CLUSTER SLOTS`).
#[cfg(feature = "redis-cluster")]
pub(super) async fn masters(
    store: &RedisStore,
    cluster: &mut redis::cluster_async::ClusterConnection,
) -> Result<Vec<Node>> {
    use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
    let mut cmd = redis::cmd("CLUSTER");
    cmd.arg("SLOTS");
    let reply = cluster
        .route_command(cmd, RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random))
        .await
        .map_err(|e| store.backend(e))?;
    parse_slots(&reply)
        .filter(|nodes| !nodes.is_empty())
        .ok_or_else(|| store.backend(format!("unexpected CLUSTER SLOTS reply: {reply:?}")))
}

/// The distinct masters of a `CLUSTER SLOTS` reply: `[[start, end, [host, port, ...], ...]]`.
#[cfg(feature = "redis-cluster")]
fn parse_slots(reply: &Value) -> Option<Vec<Node>> {
    let Value::Array(ranges) = reply else {
        return None;
    };
    let mut nodes = Vec::new();
    for range in ranges {
        let Value::Array(parts) = range else {
            return None;
        };
        let Value::Array(master) = parts.get(2)? else {
            return None;
        };
        let host = match master.first()? {
            Value::BulkString(b) => String::from_utf8(b.clone()).ok()?,
            Value::SimpleString(s) => s.clone(),
            _ => return None,
        };
        let port = match master.get(1)? {
            Value::Int(p) => u16::try_from(*p).ok()?,
            _ => return None,
        };
        let node = Node { host, port };
        if !nodes.contains(&node) {
            nodes.push(node);
        }
    }
    Some(nodes)
}

/// The names (keys without the prefix) of every key under the prefix, sorted by their bytes
/// (code point order for UTF-8) and deduplicated (`SCAN` may return a key twice).
pub(super) async fn names(store: &RedisStore, conn: &mut Conn) -> Result<Vec<Vec<u8>>> {
    let nodes: Vec<Option<Node>> = match conn {
        Conn::Single(_) => vec![None],
        #[cfg(feature = "redis-cluster")]
        Conn::Cluster(cluster) => masters(store, cluster)
            .await?
            .into_iter()
            .map(Some)
            .collect(),
    };
    let pattern = key_pattern(store.config().base_key());
    let prefix = store.inner.prefix.as_bytes();
    let mut names = Vec::new();
    for node in &nodes {
        let mut cursor: u64 = 0;
        loop {
            let mut cmd = redis::cmd("SCAN");
            cmd.arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(store.config().batch_size());
            let (next, keys): (u64, Vec<Vec<u8>>) =
                query_on(store, conn, cmd, node.as_ref()).await?;
            names.extend(
                keys.iter()
                    .filter_map(|k| k.strip_prefix(prefix).map(<[u8]>::to_vec)),
            );
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
    names.sort_unstable();
    names.dedup();
    Ok(names)
}

/// The values under these names (`MGET` in batches): `None` for a missing key or one that
/// holds another type.
pub(super) async fn values(
    store: &RedisStore,
    conn: &mut Conn,
    names: &[Vec<u8>],
) -> Result<Vec<Option<Vec<u8>>>> {
    let mut values = Vec::with_capacity(names.len());
    for chunk in names.chunks(store.config().batch_size()) {
        let mut cmd = redis::cmd("MGET");
        for name in chunk {
            cmd.arg(store.key_bytes(name));
        }
        let got: Vec<Option<Vec<u8>>> =
            cmd.query_async(conn).await.map_err(|e| store.backend(e))?;
        if got.len() != chunk.len() {
            return Err(store.backend(format!(
                "MGET returned {} values for {} keys",
                got.len(),
                chunk.len()
            )));
        }
        values.extend(got);
    }
    Ok(values)
}

/// Every flag's name and stored bytes, for the watch's poll (no empty strings, no other types,
/// no names that are not UTF-8).
pub(super) async fn snapshot(
    store: &RedisStore,
    conn: &mut Conn,
) -> Result<Vec<(String, Vec<u8>)>> {
    let names = names(store, conn).await?;
    let values = values(store, conn, &names).await?;
    Ok(names
        .into_iter()
        .zip(values)
        .filter_map(|(name, value)| {
            let value = value.filter(|v| !v.is_empty())?;
            Some((String::from_utf8(name).ok()?, value))
        })
        .collect())
}

/// [`crate::store::Store::list`].
pub(super) async fn list(
    store: &RedisStore,
    limit: Option<usize>,
    offset: usize,
) -> Result<Vec<ListEntry>> {
    let mut conn = store.conn().await?;
    let names = page(names(store, &mut conn).await?.into_iter(), limit, offset);
    let values = values(store, &mut conn, &names).await?;
    // MGET has no string under these: gone since SCAN (skipped), or of another type (reported).
    let missing: Vec<usize> = (0..values.len()).filter(|&i| values[i].is_none()).collect();
    let kinds = try_join_all(missing.iter().map(|&i| {
        let mut conn = conn.clone();
        let key = store.key_bytes(&names[i]);
        async move {
            redis::cmd("TYPE")
                .arg(key)
                .query_async::<String>(&mut conn)
                .await
        }
    }))
    .await
    .map_err(|e| store.backend(e))?;
    let kinds: HashMap<usize, String> = missing.into_iter().zip(kinds).collect();
    let mut entries = Vec::with_capacity(names.len());
    for (i, (name, value)) in names.into_iter().zip(values).enumerate() {
        let name = match String::from_utf8(name) {
            Ok(name) => name,
            Err(e) => {
                entries.push(Err(CorruptEntry {
                    key: String::from_utf8_lossy(e.as_bytes()).into_owned(),
                    error: ItemError::Format {
                        path: String::new(),
                        message: "the key's name is not UTF-8".to_owned(),
                    },
                }));
                continue;
            }
        };
        match value {
            // flipper-client reads an empty string as no flag.
            Some(bytes) if bytes.is_empty() => {}
            Some(bytes) => entries.push(
                super::decode_item(&bytes).map_err(|error| CorruptEntry { key: name, error }),
            ),
            None => match kinds.get(&i).map(String::as_str) {
                None | Some("none" | "string") => {}
                Some(kind) => entries.push(Err(CorruptEntry {
                    key: name,
                    error: not_a_string(kind),
                })),
            },
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_are_escaped() {
        assert_eq!(key_pattern("features"), "features/*");
        assert_eq!(key_pattern(r"a*b?[c]\d"), r"a\*b\?\[c\]\\d/*");
    }

    #[cfg(feature = "redis-cluster")]
    #[test]
    fn cluster_slots_name_the_masters() {
        let node = |host: &str, port| {
            Value::Array(vec![
                Value::BulkString(host.as_bytes().to_vec()),
                Value::Int(port),
                Value::BulkString(b"id".to_vec()),
            ])
        };
        let range = |start, end, master| {
            Value::Array(vec![
                Value::Int(start),
                Value::Int(end),
                master,
                node("10.0.0.9", 7009),
            ])
        };
        let reply = Value::Array(vec![
            range(0, 5460, node("10.0.0.1", 7000)),
            range(5461, 10922, node("10.0.0.2", 7001)),
            range(10923, 16383, node("10.0.0.1", 7000)),
        ]);
        let nodes = parse_slots(&reply).unwrap();
        assert_eq!(
            nodes,
            [
                Node {
                    host: "10.0.0.1".into(),
                    port: 7000
                },
                Node {
                    host: "10.0.0.2".into(),
                    port: 7001
                }
            ]
        );
        assert_eq!(parse_slots(&Value::Nil), None);
        assert_eq!(parse_slots(&Value::Array(vec![Value::Int(1)])), None);
    }
}
