//! The change log behind `GET /api/v1/stream`: the most recent changes to the server's live
//! flags ([`flipper::live::LiveFlags`]), each under the set version it produced, so that a
//! subscriber that reconnects with the last version it saw gets exactly the changes after it.
//!
//! [`ChangeFeed`] is the live flags' [`SetObserver`]: it is told of every change under the
//! live flags' writer lock, before readers can see the new set, so the log always holds the
//! changes up to any version a reader sees. Versions in the log are contiguous: every change
//! moves the set version on by one, and a reload that changes several flags is logged as
//! several changes (a put or a delete per flag). The log keeps the last `capacity` changes; a
//! version older than that is *too old* and its subscriber needs a fresh snapshot.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use flipper::live::{Edit, FlagSet, SetObserver};
use flipper::{Item, Object, Value};
use flipper_core::json;

/// How many changes the log keeps by default.
pub(crate) const DEFAULT_LOG_CAPACITY: usize = 10_000;

/// The change log of the server's live flags, with the random epoch that names its versions.
#[derive(Debug)]
pub(crate) struct ChangeFeed {
    log: Mutex<ChangeLog>,
    epoch: u64,
}

impl ChangeFeed {
    /// An empty feed keeping the last `capacity` changes (at least one).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            log: Mutex::new(ChangeLog::new(capacity)),
            epoch: crate::state::instance_id(),
        }
    }

    fn log(&self) -> MutexGuard<'_, ChangeLog> {
        // A change is pushed whole: a panic under this lock leaves no gap behind.
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A random number naming this process's versions: versions of another process mean
    /// nothing here.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// At most `max` logged changes after `version`, oldest first (empty when there is none
    /// yet); `None` when changes after `version` are no longer in the log, or `version` is not
    /// one the flags have had.
    pub(crate) fn changes_since(&self, version: u64, max: usize) -> Option<Vec<Arc<LoggedChange>>> {
        self.log().since(version, max)
    }
}

impl SetObserver for ChangeFeed {
    fn initialized(&self, set: &FlagSet) {
        self.log().reset(set.version());
    }

    fn changed(&self, edits: &[Edit], set: &FlagSet) {
        let mut log = self.log();
        let first = set.version() + 1 - edits.len() as u64;
        for (version, edit) in (first..).zip(edits) {
            log.push(LoggedChange::new(version, edit));
        }
    }
}

/// What a logged change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChangeKind {
    /// A flag was created or replaced (`event: put`).
    Put,
    /// A flag was deleted (`event: delete`).
    Delete,
}

impl ChangeKind {
    /// The SSE event name: `put` or `delete`.
    pub(crate) fn event_name(self) -> &'static str {
        match self {
            Self::Put => "put",
            Self::Delete => "delete",
        }
    }
}

/// One change, with the event data it is streamed as (rendered once, shared by every
/// subscriber).
#[derive(Debug)]
pub(crate) struct LoggedChange {
    version: u64,
    kind: ChangeKind,
    data: String,
}

impl LoggedChange {
    /// The change `edit` made, under `version`.
    pub(crate) fn new(version: u64, edit: &Edit) -> Self {
        match edit {
            Edit::Put { item, version: v } => {
                Self::put(version, item, v.as_ref().map(crate::etag::token))
            }
            Edit::Delete { name } => Self::delete(version, name),
            // A kind of change this version does not know: logged as what it is about.
            other => Self::delete(version, other.name()),
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
            data: json::to_string(&Value::from(o)),
        }
    }

    /// A delete: data `{"name": NAME}`.
    pub(crate) fn delete(version: u64, name: &str) -> Self {
        let mut o = Object::with_capacity(1);
        o.insert("name".into(), Value::from(name));
        Self {
            version,
            kind: ChangeKind::Delete,
            data: json::to_string(&Value::from(o)),
        }
    }

    /// The set version after this change.
    pub(crate) fn version(&self) -> u64 {
        self.version
    }

    /// Put or delete.
    pub(crate) fn kind(&self) -> ChangeKind {
        self.kind
    }

    /// The event's data: one line of JSON.
    pub(crate) fn data(&self) -> &str {
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
            log.push(LoggedChange::delete(v, &format!("f{v}")));
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
        let delete = LoggedChange::delete(3, "é");
        assert_eq!(delete.data(), r#"{"name": "\u00e9"}"#);
        assert_eq!(delete.version(), 3);
    }
}
