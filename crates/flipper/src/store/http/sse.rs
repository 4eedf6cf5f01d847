//! A server-sent events reader: bytes in, events out (the parts of the format the flipper
//! server uses: `event`, `data`, `id`, comments; lines end with `\n`, `\r\n` or `\r`).

/// The longest line accepted, in bytes (a snapshot event of every flag is one line).
pub(super) const MAX_LINE_BYTES: usize = 256 << 20;

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Event {
    /// The `event` field (`message` when absent).
    pub(super) name: String,
    /// The `data` lines, joined by `\n`.
    pub(super) data: String,
    /// The `id` field, if the event had one.
    pub(super) id: Option<String>,
}

/// Splits a byte stream into events.
#[derive(Debug, Default)]
pub(super) struct Reader {
    /// Bytes not yet consumed: the start of a line.
    buf: Vec<u8>,
    /// How much of `buf` is known to hold no line end.
    scanned: usize,
    name: Option<String>,
    data: Option<String>,
    id: Option<String>,
}

/// A line longer than [`MAX_LINE_BYTES`].
#[derive(Debug)]
pub(super) struct LineTooLong;

impl Reader {
    /// Takes the next bytes; returns the events they complete.
    pub(super) fn feed(&mut self, bytes: &[u8]) -> Result<Vec<Event>, LineTooLong> {
        self.buf.extend_from_slice(bytes);
        let mut events = Vec::new();
        let mut start = 0;
        let mut i = self.scanned;
        while let Some(&b) = self.buf.get(i) {
            if b != b'\n' && b != b'\r' {
                i += 1;
                continue;
            }
            let next = self.buf.get(i + 1).copied();
            if b == b'\r' && next.is_none() {
                // A `\n` may follow in the next bytes.
                break;
            }
            let line = String::from_utf8_lossy(&self.buf[start..i]).into_owned();
            i += if b == b'\r' && next == Some(b'\n') {
                2
            } else {
                1
            };
            start = i;
            if let Some(event) = self.line(&line) {
                events.push(event);
            }
        }
        self.buf.drain(..start);
        self.scanned = i - start;
        if self.buf.len() > MAX_LINE_BYTES {
            return Err(LineTooLong);
        }
        Ok(events)
    }

    fn line(&mut self, line: &str) -> Option<Event> {
        if line.is_empty() {
            let name = self.name.take();
            let data = self.data.take()?;
            return Some(Event {
                name: name.unwrap_or_else(|| "message".to_owned()),
                data,
                id: self.id.take(),
            });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => self.name = Some(value.to_owned()),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            "id" if !value.contains('\0') => self.id = Some(value.to_owned()),
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str, data: &str, id: Option<&str>) -> Event {
        Event {
            name: name.into(),
            data: data.into(),
            id: id.map(str::to_owned),
        }
    }

    #[test]
    fn events_across_chunks_and_line_ends() {
        let mut reader = Reader::default();
        let text = "event: snapshot\r\nid: e:1\r\ndata: {\"a\": 1}\r\n\r\n:\n\nevent: put\rdata:x\rdata: y\r\rdata: z\n\n";
        let mut events = Vec::new();
        // Byte by byte: every split point, including between \r and \n.
        for b in text.as_bytes() {
            events.extend(reader.feed(&[*b]).unwrap());
        }
        assert_eq!(
            events,
            [
                event("snapshot", "{\"a\": 1}", Some("e:1")),
                event("put", "x\ny", None),
                event("message", "z", None),
            ]
        );
        let mut whole = Reader::default();
        assert_eq!(whole.feed(text.as_bytes()).unwrap(), events);
    }

    #[test]
    fn comments_alone_are_not_events() {
        let mut reader = Reader::default();
        assert!(reader.feed(b":\n\n: keep-alive\n\n").unwrap().is_empty());
    }
}
