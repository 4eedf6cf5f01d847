//! Live flags over real stores: changes from each store reach them, listeners fire exactly when
//! they should, offline starts (bootstrap file, persisted snapshot), outages (zero failed
//! evaluations, nothing missed after recovery), read-your-writes with its stale-event hazard,
//! and evaluation equal to the store-backed client's on every golden vector.
//!
//! The only stand-in is `common::Gate`, a wrapper around a real `MemoryStore` that can hold
//! the watch's events back (a slow network, made deterministic); every answer comes from the
//! memory store. Outages are real: a JSON file that no longer parses (here), a flipper server
//! that is stopped (the server's tests), redis-server and PostgreSQL stopped (`live_services`).

#[path = "live/common.rs"]
mod common;
#[path = "live/listeners.rs"]
mod listeners;
#[path = "live/offline.rs"]
mod offline;
#[path = "live/outage.rs"]
mod outage;
#[path = "live/own_writes.rs"]
mod own_writes;
#[path = "live/stores.rs"]
mod stores;
#[path = "live/vectors.rs"]
mod vectors;
