//! [`Checks`]: the caller's variables for one evaluation (flipper-client's `**kwargs`).

use std::sync::atomic::{AtomicU8, Ordering};

use crate::{Object, Value};

/// The variables an evaluation is made for, in the caller's order (Python's kwargs order).
///
/// Names are unique: inserting an existing name replaces its value in place, as a Python `dict`
/// does. Order matters only where Python's does: which check runs first (and so whether a
/// `TypeError` is reached), never the consistent hash, which sorts by name.
///
/// ```
/// use flipper_core::Checks;
/// let checks = Checks::new().with("user_id", 42).with("plan", "pro");
/// assert_eq!(checks.len(), 2);
/// assert_eq!(checks.get("plan").and_then(|v| v.as_str()), Some("pro"));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Checks {
    vars: Vec<Var>,
}

/// One variable, with its name's [`name_key`] beside its value: a lookup compares keys and
/// reads the value from the same place.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Var {
    pub(crate) key: u128,
    pub(crate) value: Value,
    pub(crate) name: String,
}

impl Var {
    fn new(name: String, value: Value) -> Self {
        Self {
            key: name_key(&name),
            value,
            name,
        }
    }
}

/// A cheap key for a variable name: its first 15 bytes and its length (capped at 255). Names of
/// up to [`KEY_EXACT_LEN`] bytes have distinct keys; longer names with equal keys still need a
/// string comparison.
#[inline]
pub(crate) fn name_key(name: &str) -> u128 {
    let b = name.as_bytes();
    let mut prefix = [0u8; 16];
    let n = b.len().min(KEY_EXACT_LEN);
    prefix[..n].copy_from_slice(&b[..n]);
    prefix[15] = u8::try_from(b.len()).unwrap_or(u8::MAX);
    u128::from_le_bytes(prefix)
}

/// `a == b`, without a library call for the short strings flags compare (names, ids, plans):
/// up to 16 bytes are compared as two (possibly overlapping) words.
#[inline(always)]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| -> Option<[u8; 8]> { s.get(at..at + 8)?.try_into().ok() };
    let half = |s: &[u8], at: usize| -> Option<[u8; 4]> { s.get(at..at + 4)?.try_into().ok() };
    match n {
        0 => true,
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=7 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
        8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        _ => a == b,
    }
}

/// Where a variable was first found in the caller's checks (see [`Checks::get_placed`]): a
/// hint only, every use compares the key there. Shared between threads, it is written once,
/// by the first lookup that finds the variable: callers that build their checks in other
/// orders find it by a scan instead of taking turns rewriting it (which would bounce its
/// cache line between their cores on every evaluation).
#[derive(Debug)]
pub(crate) struct Place(AtomicU8);

/// No place yet.
const UNPLACED: u8 = u8::MAX;

impl Default for Place {
    fn default() -> Self {
        Self(AtomicU8::new(UNPLACED))
    }
}

impl Clone for Place {
    fn clone(&self) -> Self {
        Self(AtomicU8::new(self.0.load(Ordering::Relaxed)))
    }
}

/// A hint is no part of what holds it: any two are equal.
impl PartialEq for Place {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// Names this short are fully determined by their [`name_key`].
pub(crate) const KEY_EXACT_LEN: usize = 15;

impl Checks {
    /// No variables.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a variable, builder style.
    #[must_use]
    pub fn with(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.insert(name, value);
        self
    }

    /// Adds a variable, or replaces the value of an existing one in place.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<Value>) {
        let name = name.into();
        let value = value.into();
        match self.vars.iter_mut().find(|v| v.name == name) {
            Some(var) => var.value = value,
            None => self.vars.push(Var::new(name, value)),
        }
    }

    /// The value of a variable.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.vars.iter().find(|v| v.name == name).map(|v| &v.value)
    }

    /// The variables in order.
    pub fn iter(&self) -> Iter<'_> {
        Iter(self.vars.iter())
    }

    /// Number of variables.
    pub fn len(&self) -> usize {
        self.vars.len()
    }

    /// Whether no variable was given (then conditions are skipped and the bucketer decides).
    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }

    pub(crate) fn vars(&self) -> &[Var] {
        &self.vars
    }

    /// The value of the variable `name`, whose [`name_key`] is `key`: found by comparing keys
    /// (names are read only when longer than [`KEY_EXACT_LEN`]).
    #[inline]
    pub(crate) fn get_keyed(&self, key: u128, name: &str) -> Option<&Value> {
        if name.len() > KEY_EXACT_LEN {
            return self.get_keyed_long(key, name);
        }
        // The key is the name: the first equal key is the variable.
        self.vars.iter().find(|v| v.key == key).map(|v| &v.value)
    }

    /// [`Checks::get_keyed`], looking first where `place` says the variable was first found
    /// (callers build their checks in the same order on every request, so it usually is
    /// there), and setting the place if it has none.
    #[inline(always)]
    pub(crate) fn get_placed(&self, key: u128, name: &str, place: &Place) -> Option<&Value> {
        if name.len() > KEY_EXACT_LEN {
            return self.get_keyed_long(key, name);
        }
        let at = usize::from(place.0.load(Ordering::Relaxed));
        match self.vars.get(at) {
            Some(var) if var.key == key => Some(&var.value),
            _ => self.get_moved(key, place),
        }
    }

    /// [`Checks::get_placed`] when the variable is not at its place.
    #[inline(never)]
    fn get_moved(&self, key: u128, place: &Place) -> Option<&Value> {
        let (at, var) = self.vars.iter().enumerate().find(|(_, v)| v.key == key)?;
        // Two first lookups may both set it: either place is right for its caller.
        if place.0.load(Ordering::Relaxed) == UNPLACED
            && let Ok(at8) = u8::try_from(at)
        {
            place.0.store(at8, Ordering::Relaxed);
        }
        Some(&var.value)
    }

    /// [`Checks::get_keyed`] for a name longer than [`KEY_EXACT_LEN`], which its key does not
    /// fully determine.
    #[inline(never)]
    fn get_keyed_long(&self, key: u128, name: &str) -> Option<&Value> {
        self.vars
            .iter()
            .find(|v| v.key == key && v.name == name)
            .map(|v| &v.value)
    }
}

impl From<Object> for Checks {
    fn from(o: Object) -> Self {
        Self {
            vars: o.into_iter().map(|(n, v)| Var::new(n, v)).collect(),
        }
    }
}

impl<K: Into<String>, V: Into<Value>> FromIterator<(K, V)> for Checks {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut c = Self::new();
        for (k, v) in iter {
            c.insert(k, v);
        }
        c
    }
}

impl<'a> IntoIterator for &'a Checks {
    type Item = (&'a str, &'a Value);
    type IntoIter = Iter<'a>;
    fn into_iter(self) -> Self::IntoIter {
        Iter(self.vars.iter())
    }
}

/// The variables of [`Checks`] in order, as `(name, value)`.
#[derive(Debug, Clone)]
pub struct Iter<'a>(std::slice::Iter<'a, Var>);

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, &'a Value);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|v| (v.name.as_str(), &v.value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl ExactSizeIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_replaces_in_place() {
        let c = Checks::new().with("b", 1).with("a", 2).with("b", 3);
        let names: Vec<_> = c.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["b", "a"]);
        assert_eq!(c.get("b"), Some(&Value::from(3)));
    }

    #[test]
    fn keyed_lookup_finds_what_get_finds() {
        // Short names; names past a key's 15 bytes that share their first 15 bytes and length
        // (equal keys), so only the name tells them apart; absent names of both kinds.
        let names = [
            "plan",
            "age",
            "user_id",
            "a_long_variable_name_1",
            "a_long_variable_name_2",
            "exactly_15_byte",
            "exactly_16_bytes",
        ];
        // One place per probe, shared by every set of checks below (in both orders), as a
        // prepared check's place is shared by every caller: it is only a hint, often wrong.
        let probes: Vec<&str> = names
            .iter()
            .copied()
            .chain(["absent", "a_long_variable_name_3"])
            .collect();
        let places: Vec<Place> = probes.iter().map(|_| Place::default()).collect();
        for n in 0..=names.len() {
            for reversed in [false, true] {
                let mut given = names[..n].to_vec();
                if reversed {
                    given.reverse();
                }
                let checks: Checks = given.iter().map(|&name| (name, name.len())).collect();
                for (probe, place) in probes.iter().zip(&places) {
                    let expected = checks.get(probe);
                    let key = name_key(probe);
                    assert_eq!(checks.get_keyed(key, probe), expected, "{given:?}, {probe}");
                    // Twice: the first lookup may set the place.
                    for _ in 0..2 {
                        assert_eq!(
                            checks.get_placed(key, probe, place),
                            expected,
                            "{given:?}, {probe}, placed"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_place_is_set_once() {
        // Callers with other orders do not rewrite it (each rewrite would be a write to a
        // line every evaluating thread reads).
        let place = Place::default();
        let first = Checks::new().with("plan", "pro").with("age", 30);
        let other = Checks::new().with("age", 30).with("plan", "pro");
        let key = name_key("age");
        assert_eq!(other.get_placed(name_key("absent"), "absent", &place), None);
        assert_eq!(place.0.load(Ordering::Relaxed), UNPLACED);
        assert_eq!(first.get_placed(key, "age", &place), first.get("age"));
        assert_eq!(place.0.load(Ordering::Relaxed), 1);
        assert_eq!(other.get_placed(key, "age", &place), other.get("age"));
        assert_eq!(place.0.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn same_bytes_is_slice_equality() {
        let words: Vec<Vec<u8>> = (0..40)
            .flat_map(|n: usize| {
                let base: Vec<u8> = (0..n).map(|i| b'a' + (i % 26) as u8).collect();
                // The same, and one byte changed at each end and in the middle.
                let mut variants = vec![base.clone()];
                for at in [0, n / 2, n.saturating_sub(1)] {
                    if at < n {
                        let mut v = base.clone();
                        v[at] ^= 1;
                        variants.push(v);
                    }
                }
                variants
            })
            .collect();
        for a in &words {
            for b in &words {
                assert_eq!(same_bytes(a, b), a == b, "{a:?} {b:?}");
            }
        }
    }
}
