//! Placeholder until the wrappers tests land.
