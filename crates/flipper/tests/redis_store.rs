//! Placeholder until the redis_store tests land.
