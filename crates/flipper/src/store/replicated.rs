//! The replicated wrapper.
