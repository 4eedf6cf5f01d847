//! The fake Consul's KV state, following Consul's state store (`agent/consul/state/kvs.go`) and
//! KVS endpoint (`agent/consul/kvs_endpoint.go`): a Raft index that every write advances, the
//! table index of the last effective change, entries with `CreateIndex`/`ModifyIndex`, and
//! tombstones (the graveyard) so a prefix's index does not slide back when a key is deleted,
//! until they are reaped.

use std::collections::BTreeMap;

/// One KV entry (Consul's `DirEntry`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DirEntry {
    /// The value; empty is Consul's `null`.
    pub(crate) value: Vec<u8>,
    pub(crate) flags: u64,
    pub(crate) create_index: u64,
    pub(crate) modify_index: u64,
}

/// The KV store of one fake agent. Clone it to take a snapshot.
#[derive(Debug, Clone)]
pub(crate) struct Kv {
    /// The last Raft index applied (every write takes one, even a no-op).
    raft: u64,
    /// The index of the last change to the KV or tombstone tables.
    table: u64,
    entries: BTreeMap<String, DirEntry>,
    /// Deleted keys and the index of their deletion.
    tombstones: BTreeMap<String, u64>,
}

impl Default for Kv {
    fn default() -> Self {
        // A fresh agent has applied a few entries (its own registration) before any KV write.
        Self {
            raft: 12,
            table: 0,
            entries: BTreeMap::new(),
            tombstones: BTreeMap::new(),
        }
    }
}

/// Consul's rule for answers with nothing in them: "Must provide non-zero index to prevent
/// blocking. Index 1 is impossible anyways (due to Raft internals)."
fn nonzero(index: u64) -> u64 {
    index.max(1)
}

impl Kv {
    /// The last Raft index applied.
    pub(crate) fn raft_index(&self) -> u64 {
        self.raft
    }

    /// `KVS.Get`: the entry, and its `ModifyIndex` (or the table index when missing).
    pub(crate) fn get(&self, key: &str) -> (u64, Option<&DirEntry>) {
        match self.entries.get(key) {
            Some(entry) => (entry.modify_index, Some(entry)),
            None => (nonzero(self.table), None),
        }
    }

    /// `KVS.List`: the entries under `prefix` in key order, and the highest index among them
    /// and the prefix's tombstones (the table index when that is 0, or for the empty prefix).
    pub(crate) fn list(&self, prefix: &str) -> (u64, Vec<(&String, &DirEntry)>) {
        let entries: Vec<(&String, &DirEntry)> = self
            .entries
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .collect();
        let mut lindex = entries
            .iter()
            .map(|(_, e)| e.modify_index)
            .max()
            .unwrap_or(0);
        if prefix.is_empty() {
            lindex = self.table;
        } else {
            let gindex = self
                .tombstones
                .range(prefix.to_owned()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .map(|(_, i)| *i)
                .max()
                .unwrap_or(0);
            lindex = lindex.max(gindex);
        }
        let index = if lindex != 0 { lindex } else { self.table };
        (nonzero(index), entries)
    }

    /// `KVS.ListKeys`: the keys under `prefix`, cut after `separator` (deduplicated).
    pub(crate) fn keys(&self, prefix: &str, separator: &str) -> (u64, Vec<String>) {
        let (index, entries) = self.list(prefix);
        let mut keys: Vec<String> = Vec::new();
        for (key, _) in entries {
            let after = &key[prefix.len()..];
            let key = match after.find(separator).filter(|_| !separator.is_empty()) {
                Some(i) => key[..prefix.len() + i + separator.len()].to_owned(),
                None => key.clone(),
            };
            if keys.last() != Some(&key) {
                keys.push(key);
            }
        }
        (index, keys)
    }

    /// `KVSet` / `KVCAS` (`cas`: only if the `ModifyIndex` is this; `0`: only if missing).
    /// Returns whether it was applied. Writing what the key holds changes nothing (its
    /// `ModifyIndex` stays).
    pub(crate) fn set(&mut self, key: &str, value: Vec<u8>, flags: u64, cas: Option<u64>) -> bool {
        self.raft += 1;
        let idx = self.raft;
        let existing = self.entries.get(key);
        match (cas, existing) {
            (Some(0), Some(_)) => return false,
            (Some(c), None) if c != 0 => return false,
            (Some(c), Some(e)) if c != 0 && e.modify_index != c => return false,
            _ => {}
        }
        if let Some(e) = existing
            && e.value == value
            && e.flags == flags
        {
            return true;
        }
        let create_index = existing.map_or(idx, |e| e.create_index);
        self.entries.insert(
            key.to_owned(),
            DirEntry {
                value,
                flags,
                create_index,
                modify_index: idx,
            },
        );
        self.table = idx;
        true
    }

    /// `KVDelete` / `KVDeleteCAS` (`cas`: only if the `ModifyIndex` is this; a CAS delete of a
    /// missing key answers `true`, as Consul's does).
    pub(crate) fn delete(&mut self, key: &str, cas: Option<u64>) -> bool {
        self.raft += 1;
        let idx = self.raft;
        let Some(existing) = self.entries.get(key) else {
            return true;
        };
        if cas.is_some_and(|c| c != existing.modify_index) {
            return false;
        }
        self.entries.remove(key);
        self.tombstones.insert(key.to_owned(), idx);
        self.table = idx;
        true
    }

    /// `KVDeleteTree`: every key under `prefix`.
    pub(crate) fn delete_tree(&mut self, prefix: &str) {
        self.raft += 1;
        let idx = self.raft;
        let keys: Vec<String> = self
            .entries
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for key in &keys {
            self.entries.remove(key);
            self.tombstones.insert(key.clone(), idx);
        }
        if !keys.is_empty() {
            self.table = idx;
        }
    }

    /// Reaps every tombstone (Consul's tombstone GC): a prefix whose newest change was a
    /// deletion then reports a lower index.
    pub(crate) fn reap_tombstones(&mut self) {
        self.tombstones.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_follow_consuls_rules() {
        let mut kv = Kv::default();
        assert_eq!(kv.list("features/"), (1, vec![]));
        assert!(kv.set("features/a", b"1".to_vec(), 0, Some(0)));
        assert!(!kv.set("features/a", b"2".to_vec(), 0, Some(0)));
        let a = kv.get("features/a").1.unwrap().modify_index;
        assert!(kv.set("other/x", b"x".to_vec(), 0, None));
        // Another prefix's write does not move this prefix's index.
        assert_eq!(kv.list("features/").0, a);
        // The same bytes again: applied, nothing changes.
        assert!(kv.set("features/a", b"1".to_vec(), 0, Some(a)));
        assert_eq!(kv.get("features/a").1.unwrap().modify_index, a);
        assert!(!kv.set("features/a", b"3".to_vec(), 0, Some(a + 100)));
        assert!(kv.set("features/b", b"b".to_vec(), 0, None));
        let b = kv.get("features/b").0;
        assert!(!kv.delete("features/b", Some(b - 1)));
        assert!(kv.delete("features/b", Some(b)));
        assert!(
            kv.delete("features/b", Some(b)),
            "a CAS delete of a missing key is true"
        );
        let (after_delete, entries) = kv.list("features/");
        assert!(after_delete > b, "the tombstone keeps the index up");
        assert_eq!(entries.len(), 1);
        kv.reap_tombstones();
        assert_eq!(kv.list("features/").0, a, "reaped: the index goes back");
        assert!(kv.set("features/x/y", b"1".to_vec(), 0, None));
        assert_eq!(kv.keys("features/", "/").1, ["features/a", "features/x/"]);
        kv.delete_tree("features/");
        assert!(kv.list("features/").1.is_empty());
    }
}
