//! Python's comparison operators over [`Value`]s.
//!
//! STUB: API fixed, bodies being written.

use std::fmt;

use crate::Value;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CmpOp {
    /// The operator as Python spells it in error messages (`<`, `<=`, `>`, `>=`).
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
        }
    }
}

/// The `TypeError` Python raises for an unsupported comparison or membership test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeError {
    /// Python's message, e.g. `'<' not supported between instances of 'str' and 'int'`.
    pub message: String,
}

impl fmt::Display for TypeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
impl std::error::Error for TypeError {}

/// Python's `a == b` for values from `json.loads`.
pub fn eq(a: &Value, b: &Value) -> bool {
    let _ = (a, b);
    unimplemented!("pyops::eq")
}

/// Python's `a <op> b`.
pub fn compare(a: &Value, op: CmpOp, b: &Value) -> Result<bool, TypeError> {
    let _ = (a, op, b);
    unimplemented!("pyops::compare")
}

/// Python's `item in container`.
pub fn contains(container: &Value, item: &Value) -> Result<bool, TypeError> {
    let _ = (container, item);
    unimplemented!("pyops::contains")
}
