//! Placeholder until the postgres_store tests land.
