//! The Lua scripts behind every write (one round trip each: check, write, announce), and the
//! change channel's messages.
//!
//! # The change channel
//!
//! Every write through a [`RedisStore`](super::RedisStore) publishes, in the same script and so
//! atomically with the write and in the order the server applied it, one message on the
//! channel `flipper:changes:BASE_KEY` (the store's `base_key` as is):
//!
//! | message | meaning |
//! |---|---|
//! | `P` followed by the stored bytes | the flag was written; these are its new bytes (exactly what `GET BASE_KEY/NAME` returns), its name is their `feature_name`, and its version their SHA-1 |
//! | `D` followed by the flag's name (UTF-8) | the flag was deleted |
//!
//! A watcher therefore needs no `GET` to report flipper's own writes. Other first bytes are
//! reserved; a watcher that meets one (or an unreadable flag) reloads everything
//! ([`crate::store::Change::Resync`]). flipper-client (Python) publishes nothing: its writes are
//! heard through keyspace notifications or polling (see the watch module).

use redis::Script;

/// The first byte of a put message.
const PUT: u8 = b'P';
/// The first byte of a delete message.
const DELETE: u8 = b'D';

/// `PUT(KEYS[1] = key; ARGV = mode, expected version, bytes, channel)`: writes if `mode`'s
/// precondition holds and announces it. Returns 1 when written, 0 when the precondition failed.
///
/// Modes: `overwrite` (always, whatever type the key holds, as flipper-client's `SET`),
/// `create` (only when there is no flag: no key, or an empty string, which flipper-client
/// reads as no flag), `update` (only when the key holds a non-empty string whose SHA-1 is the
/// expected version).
const PUT_SCRIPT: &str = r"
local key, mode = KEYS[1], ARGV[1]
if mode ~= 'overwrite' then
  local kind = redis.call('TYPE', key)['ok']
  local current = false
  if kind == 'string' then current = redis.call('GET', key) end
  if current == '' then current = false end
  if mode == 'create' then
    if current or (kind ~= 'none' and kind ~= 'string') then return 0 end
  elseif mode == 'update' then
    if (not current) or redis.sha1hex(current) ~= ARGV[2] then return 0 end
  else
    return redis.error_reply('flipper: unknown put mode ' .. mode)
  end
end
redis.call('SET', key, ARGV[3])
redis.call('PUBLISH', ARGV[4], 'P' .. ARGV[3])
return 1
";

/// `PUT_MANY(KEYS = keys; ARGV = channel, bytes...)`: overwrites every key (in order, each
/// announced right after its write) in one atomic script. Standalone servers only: on a
/// cluster the keys may live in different slots.
const PUT_MANY_SCRIPT: &str = r"
for i, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[i + 1])
  redis.call('PUBLISH', ARGV[1], 'P' .. ARGV[i + 1])
end
return #KEYS
";

/// `DELETE(KEYS[1] = key; ARGV = channel, name)`: deletes and announces. Returns whether the
/// key existed.
const DELETE_SCRIPT: &str = r"
local n = redis.call('DEL', KEYS[1])
if n > 0 then redis.call('PUBLISH', ARGV[1], 'D' .. ARGV[2]) end
return n
";

/// The scripts, hashed once per store.
#[derive(Debug)]
pub(super) struct Scripts {
    pub(super) put: Script,
    pub(super) put_many: Script,
    pub(super) delete: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        Self {
            put: Script::new(PUT_SCRIPT),
            put_many: Script::new(PUT_MANY_SCRIPT),
            delete: Script::new(DELETE_SCRIPT),
        }
    }

    /// Every script, to load them when a connection opens.
    pub(super) fn all(&self) -> [&Script; 3] {
        [&self.put, &self.put_many, &self.delete]
    }
}

/// The change channel of a base key.
pub(super) fn channel(base_key: &str) -> String {
    format!("flipper:changes:{base_key}")
}

/// A message read from the change channel.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Notice<'a> {
    /// A flag's new stored bytes.
    Put(&'a [u8]),
    /// A deleted flag's name.
    Delete(&'a str),
}

/// Reads a change-channel message; `None` for one this version does not understand.
pub(super) fn decode(payload: &[u8]) -> Option<Notice<'_>> {
    match payload.split_first()? {
        (&PUT, bytes) => Some(Notice::Put(bytes)),
        (&DELETE, name) => std::str::from_utf8(name).ok().map(Notice::Delete),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_decode() {
        assert_eq!(decode(b"P{\"a\": 1}"), Some(Notice::Put(b"{\"a\": 1}")));
        assert_eq!(decode(b"Da/b"), Some(Notice::Delete("a/b")));
        assert_eq!(decode(b"D\xff"), None);
        assert_eq!(decode(b"X"), None);
        assert_eq!(decode(b""), None);
        assert_eq!(channel("features"), "flipper:changes:features");
        // The scripts publish what `decode` reads.
        assert!(PUT_SCRIPT.contains("'P' .."));
        assert!(PUT_MANY_SCRIPT.contains("'P' .."));
        assert!(DELETE_SCRIPT.contains("'D' .."));
    }
}
