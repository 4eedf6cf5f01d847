//! The change log behind `GET /api/v1/stream`: the most recent changes to the
//! [`Snapshot`](crate::Snapshot), each under the snapshot version it produced, so that a
//! subscriber that reconnects with the last version it saw gets exactly the changes after it.
//!
//! Versions in the log are contiguous: every change moves the snapshot's version on by one, and
//! a reload that changes several flags is logged as several changes (a put or a delete per
//! flag). The log keeps the last `capacity` changes; a version older than that is *too old*
//! and its subscriber needs a fresh snapshot.

use std::collections::VecDeque;
use std::sync::Arc;

use flipper::store::Version;
use flipper::{Item, Object, Value};
use flipper_core::json;

/// What a logged change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// A flag was created or replaced (`event: put`).
    Put,
    /// A flag was deleted (`event: delete`).
    Delete,
}

impl ChangeKind {
    /// The SSE event name: `put` or `delete`.
    pub fn event_name(self) -> &'static str {
        match self {
            Self::Put => "put",
            Self::Delete => "delete",
        }
    }
}

/// One change, before it gets its version: a put (the flag, its `ETag` text) or a delete.
pub(crate) enum Edit {
    Put(Arc<Item>, Option<String>),
    Delete(String),
}

impl Edit {
    pub(crate) fn put(item: &Arc<Item>, version: Option<&Version>) -> Self {
        Self::Put(Arc::clone(item), version.map(crate::etag::token))
    }
}

/// One change, with the event data it is streamed as (rendered once, shared by every
/// subscriber).
#[derive(Debug)]
pub struct LoggedChange {
    version: u64,
    kind: ChangeKind,
    name: String,
    data: String,
}

impl LoggedChange {
    /// The change `edit` made, under `version`.
    pub(crate) fn new(version: u64, edit: Edit) -> Self {
        match edit {
            Edit::Put(item, etag) => Self::put(version, &item, etag),
            Edit::Delete(name) => Self::delete(version, name),
        }
    }

    /// A put: data `{"name": NAME, "version": ETAG, "item": STORED FLAG}`, the flag exactly as
    /// [`Item::to_json`] writes it and `version` its store version as the API's `ETag` shows it
    /// (without quotes), `null` when unknown.
    pub(crate) fn put(version: u64, item: &Item, etag: Option<String>) -> Self {
        let mut o = Object::with_capacity(3);
        o.insert("name".into(), Value::from(item.feature_name.as_str()));
        o.insert("version".into(), etag.map_or(Value::Null, Value::from));
        o.insert("item".into(), item.to_value());
        Self {
            version,
            kind: ChangeKind::Put,
            name: item.feature_name.clone(),
            data: json::to_string(&Value::from(o)),
        }
    }

    /// A delete: data `{"name": NAME}`.
    pub(crate) fn delete(version: u64, name: String) -> Self {
        let mut o = Object::with_capacity(1);
        o.insert("name".into(), Value::from(name.as_str()));
        Self {
            version,
            kind: ChangeKind::Delete,
            name,
            data: json::to_string(&Value::from(o)),
        }
    }

    /// The snapshot version after this change.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Put or delete.
    pub fn kind(&self) -> ChangeKind {
        self.kind
    }

    /// The flag.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The event's data: one line of JSON.
    pub fn data(&self) -> &str {
        &self.data
    }
}

/// The last changes, oldest first.
#[derive(Debug)]
pub(crate) struct ChangeLog {
    capacity: usize,
    /// Every change after this version is kept: a subscriber at `base` or later can resume.
    base: u64,
    entries: VecDeque<Arc<LoggedChange>>,
}

impl ChangeLog {
    /// An empty log keeping at most `capacity` changes (at least one).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            base: 0,
            entries: VecDeque::new(),
        }
    }

    /// The version after the last logged change.
    fn head(&self) -> u64 {
        self.base + self.entries.len() as u64
    }

    /// Forgets every change: no subscriber can resume from before `version` (a first load).
    pub(crate) fn reset(&mut self, version: u64) {
        self.entries.clear();
        self.base = version;
    }

    /// Appends a change; its version must be the next one. The oldest change goes when the log
    /// is full.
    pub(crate) fn push(&mut self, change: LoggedChange) {
        debug_assert_eq!(
            change.version,
            self.head() + 1,
            "log versions are contiguous"
        );
        if self.entries.len() == self.capacity
            && let Some(oldest) = self.entries.pop_front()
        {
            self.base = oldest.version;
        }
        self.entries.push_back(Arc::new(change));
    }

    /// At most `max` changes after `version`, oldest first; `None` when `version` is older
    /// than the log (changes after it were dropped) or newer than its last change.
    pub(crate) fn since(&self, version: u64, max: usize) -> Option<Vec<Arc<LoggedChange>>> {
        if version < self.base || version > self.head() {
            return None;
        }
        let skip = usize::try_from(version - self.base).ok()?;
        Some(self.entries.iter().skip(skip).take(max).cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn versions(changes: Option<Vec<Arc<LoggedChange>>>) -> Option<Vec<u64>> {
        changes.map(|c| c.iter().map(|c| c.version()).collect())
    }

    #[test]
    fn resumes_within_the_log_only() {
        let mut log = ChangeLog::new(3);
        log.reset(1);
        assert_eq!(versions(log.since(1, 10)), Some(vec![]));
        assert_eq!(versions(log.since(0, 10)), None);
        assert_eq!(versions(log.since(2, 10)), None);
        for v in 2..=6 {
            log.push(LoggedChange::delete(v, format!("f{v}")));
        }
        // 4, 5, 6 are kept: resuming from 3 (just before them) up to 6 works.
        assert_eq!(versions(log.since(2, 10)), None);
        assert_eq!(versions(log.since(3, 10)), Some(vec![4, 5, 6]));
        assert_eq!(versions(log.since(4, 1)), Some(vec![5]));
        assert_eq!(versions(log.since(6, 10)), Some(vec![]));
        assert_eq!(versions(log.since(7, 10)), None);
    }

    #[test]
    fn event_data_is_one_line_of_json() {
        let item = Item::new("a\nb", true, 1);
        let put = LoggedChange::put(2, &item, Some("17".into()));
        assert_eq!(put.kind().event_name(), "put");
        assert_eq!(
            put.data(),
            format!(
                r#"{{"name": "a\nb", "version": "17", "item": {}}}"#,
                item.to_json()
            )
        );
        let delete = LoggedChange::delete(3, "é".into());
        assert_eq!(delete.data(), r#"{"name": "\u00e9"}"#);
        assert_eq!((delete.name(), delete.version()), ("é", 3));
    }
}
