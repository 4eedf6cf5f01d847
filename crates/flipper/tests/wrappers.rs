//! The store wrappers, `CachedStore` and `ReplicatedStore`, over real stores: the whole
//! conformance suite for each arrangement (here), then each wrapper's own behaviour:
//! `wrappers/cached.rs` (cache hits, expiry, eviction, invalidation, single flight) and
//! `wrappers/replicated.rs` (replication, timeouts, failure reports).
//!
//! The only stand-in is `common::Faulty` (`wrappers/common.rs`), a fault injector around a real
//! `MemoryStore` (latency, errors, read counts). It is not a mock: every answer comes from the
//! memory store.

use std::time::Duration;

use flipper::store::{CacheOptions, CachedStore, MemoryStore, ReplicatedStore, Replication};

use crate::common::{json_file, memory};

#[path = "wrappers/cached.rs"]
mod cached;
#[path = "wrappers/common.rs"]
mod common;
#[path = "wrappers/replicated.rs"]
mod replicated;

// ---------------------------------------------------------------------------------------------
// Conformance

mod cached_memory {
    use super::*;
    flipper::store_conformance_tests!(CachedStore::new(MemoryStore::new()));
}

mod cached_memory_with_ttl {
    use super::*;
    flipper::store_conformance_tests!(CachedStore::with_options(
        MemoryStore::new(),
        CacheOptions::new().ttl(Some(Duration::from_secs(60)))
    ));
}

mod cached_json_file {
    use super::*;
    flipper::store_conformance_tests!(guarded: {
        let (dir, file) = json_file();
        (dir, CachedStore::new(file))
    });
}

mod replicated_sync {
    use super::*;
    flipper::store_conformance_tests!(ReplicatedStore::new(memory(), vec![memory(), memory()]));
}

mod replicated_async {
    use super::*;
    flipper::store_conformance_tests!(
        ReplicatedStore::new(memory(), vec![memory(), memory()]).with_replication(
            Replication::Asynchronous {
                timeout: Duration::from_secs(1)
            }
        )
    );
}

mod replicated_json_file {
    use super::*;
    flipper::store_conformance_tests!(guarded: {
        let (primary_dir, primary) = json_file();
        let (replica_dir, replica) = json_file();
        (
            (primary_dir, replica_dir),
            ReplicatedStore::new(primary, vec![memory(), replica]),
        )
    });
}

mod cached_replicated {
    use super::*;
    flipper::store_conformance_tests!(CachedStore::new(ReplicatedStore::new(
        memory(),
        vec![memory(), memory()]
    )));
}
