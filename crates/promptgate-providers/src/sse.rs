//! A server-sent events decoder (the WHATWG "event stream" grammar), fed with the body's
//! chunks as they arrive. Chunks split lines, and even UTF-8 characters, anywhere, so the
//! decoder keeps the unfinished line and only decodes complete ones.

use std::collections::VecDeque;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// The `event:` field; empty when the event had none (the spec's "message").
    pub event: String,
    /// The `data:` fields joined with newlines.
    pub data: String,
}

/// Turns body chunks into events.
#[derive(Debug, Default)]
pub(crate) struct SseDecoder {
    line: Vec<u8>,
    /// The previous chunk ended with CR, so a LF that starts this one ends no second line.
    skip_lf: bool,
    /// Whether the first line, which may start with a byte-order mark, has been read.
    started: bool,
    event: String,
    data: String,
    has_data: bool,
}

impl SseDecoder {
    /// Decodes `chunk`, appending every event it completes to `out`.
    pub(crate) fn feed(&mut self, chunk: &[u8], out: &mut VecDeque<SseEvent>) {
        for &byte in chunk {
            if std::mem::take(&mut self.skip_lf) && byte == b'\n' {
                continue;
            }
            match byte {
                b'\n' => self.end_line(out),
                b'\r' => {
                    self.end_line(out);
                    self.skip_lf = true;
                }
                _ => self.line.push(byte),
            }
        }
    }

    fn end_line(&mut self, out: &mut VecDeque<SseEvent>) {
        let raw = std::mem::take(&mut self.line);
        let decoded = String::from_utf8_lossy(&raw);
        let line = if std::mem::replace(&mut self.started, true) {
            decoded.as_ref()
        } else {
            decoded.strip_prefix('\u{FEFF}').unwrap_or(&decoded)
        };
        if line.is_empty() {
            // A blank line dispatches; an event without data is dropped, as the spec says.
            let event = std::mem::take(&mut self.event);
            let data = std::mem::take(&mut self.data);
            if std::mem::take(&mut self.has_data) {
                out.push_back(SseEvent { event, data });
            }
        } else if !line.starts_with(':') {
            let (field, value) = match line.split_once(':') {
                Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
                None => (line, ""),
            };
            match field {
                "event" => value.clone_into(&mut self.event),
                "data" => {
                    if self.has_data {
                        self.data.push('\n');
                    }
                    self.data.push_str(value);
                    self.has_data = true;
                }
                // `id` and `retry` only matter to a client that reconnects, which a generation
                // request must not do.
                _ => {}
            }
        }
        let mut raw = raw;
        raw.clear();
        self.line = raw;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(input: &[u8], piece: usize) -> Vec<SseEvent> {
        let mut decoder = SseDecoder::default();
        let mut out = VecDeque::new();
        for chunk in input.chunks(piece) {
            decoder.feed(chunk, &mut out);
        }
        out.into_iter().collect()
    }

    fn event(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.to_owned(),
            data: data.to_owned(),
        }
    }

    #[test]
    fn same_events_however_the_body_is_split() {
        let input = "\u{FEFF}event: first\ndata: 1\n\n: comment\r\nevent: message_start\r\ndata: {\"a\":\"é€😀\"}\r\n\r\n\
                     data: first\ndata:second\n\nevent: ping\n\nid: 7\rdata: x\r\r"
            .as_bytes();
        let expected = vec![
            event("first", "1"),
            event("message_start", "{\"a\":\"é€😀\"}"),
            event("", "first\nsecond"),
            event("", "x"),
        ];
        for piece in 1..=input.len() {
            assert_eq!(
                decode_in_pieces(input, piece),
                expected,
                "piece size {piece}"
            );
        }
    }

    #[test]
    fn an_unfinished_event_is_not_dispatched() {
        assert_eq!(decode_in_pieces(b"data: [DONE]\n", 4), vec![]);
        assert_eq!(
            decode_in_pieces(b"data: [DONE]\n\n", 4),
            vec![event("", "[DONE]")]
        );
    }

    #[test]
    fn a_field_without_colon_has_an_empty_value() {
        assert_eq!(decode_in_pieces(b"data\n\n", 3), vec![event("", "")]);
    }
}
