//! flipper
