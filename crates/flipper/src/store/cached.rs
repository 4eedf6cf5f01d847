//! The cached wrapper.
