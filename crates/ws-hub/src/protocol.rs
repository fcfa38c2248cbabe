//! The JSON protocol: what clients send and the frames the server writes.
//
// Server frames are written by hand into one buffer (the topic escaped by
// serde_json, the data copied in as already-encoded JSON) so a broadcast is
// encoded exactly once and every subscriber's queue holds the same `Bytes`.
// That buffer is the whole WebSocket frame: the JSON is written after
// `HEADROOM` spare bytes and the frame header (server frames are unmasked,
// so it is the same for every connection) is filled in front of it at the
// end, so a socket write sends the shared bytes as they are.

use std::borrow::Cow;
use std::fmt::Write as _;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;

/// The protocol version this hub speaks (the `v` field).
pub const PROTOCOL_VERSION: u32 = 1;

/// A client's message, parsed without copying its `data`.
#[derive(Debug, Deserialize)]
pub(crate) struct Incoming<'a> {
    #[serde(default)]
    pub(crate) v: Option<u32>,
    #[serde(rename = "type", borrow)]
    pub(crate) kind: Cow<'a, str>,
    #[serde(default, borrow)]
    pub(crate) topic: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub(crate) data: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub(crate) token: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub(crate) epoch: Option<Cow<'a, str>>,
    #[serde(default)]
    pub(crate) offset: Option<u64>,
    #[serde(default, borrow)]
    pub(crate) priority: Option<Cow<'a, str>>,
    #[serde(default)]
    pub(crate) id: Option<u64>,
}

fn json_str(out: &mut Vec<u8>, s: &str) {
    // Writing a &str into a Vec cannot fail.
    serde_json::to_writer(&mut *out, s).unwrap_or_default();
}

/// The head of a `message` frame, up to and including `"data":`.
pub(crate) fn message_head(out: &mut Vec<u8>, topic: &str, position: Option<(&str, u64)>) {
    out.extend_from_slice(br#"{"v":1,"type":"message","topic":"#);
    json_str(out, topic);
    if let Some((epoch, offset)) = position {
        out.extend_from_slice(br#","epoch":"#);
        json_str(out, epoch);
        let mut s = String::with_capacity(32);
        let _ = write!(s, r#","offset":{offset}"#);
        out.extend_from_slice(s.as_bytes());
    }
    out.extend_from_slice(br#","data":"#);
}

/// A whole `message` frame around already-encoded JSON `data`.
pub(crate) fn message_frame(topic: &str, position: Option<(&str, u64)>, data: &str) -> Frame {
    let mut out = Frame::buffer(64 + topic.len() + data.len());
    message_head(&mut out, topic, position);
    out.extend_from_slice(data.as_bytes());
    out.push(b'}');
    Frame::seal(out)
}

/// Bytes reserved in front of a message for its WebSocket frame header
/// (2, 4 or 10 bytes for payloads below 126 bytes, below 64 KiB, larger).
pub(crate) const HEADROOM: usize = 10;

/// A server message encoded once as a complete WebSocket text frame (FIN,
/// opcode 1, unmasked): the bytes every subscriber's socket receives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Frame {
    wire: Bytes,
    head: u8,
}

impl Frame {
    /// An empty buffer with the header's room reserved: write the JSON
    /// after it, then [`seal`](Self::seal) it.
    pub(crate) fn buffer(capacity: usize) -> Vec<u8> {
        let mut buf = Vec::with_capacity(HEADROOM + capacity);
        buf.resize(HEADROOM, 0);
        buf
    }

    /// Fills in the header for the JSON written after the headroom.
    pub(crate) fn seal(mut buf: Vec<u8>) -> Self {
        let len = buf.len() - HEADROOM;
        let mut head = [0u8; HEADROOM];
        head[0] = 0x81;
        let n = if len < 126 {
            head[1] = len as u8;
            2
        } else if let Ok(short) = u16::try_from(len) {
            head[1] = 126;
            head[2..4].copy_from_slice(&short.to_be_bytes());
            4
        } else {
            head[1] = 127;
            head[2..10].copy_from_slice(&(len as u64).to_be_bytes());
            10
        };
        let start = HEADROOM - n;
        buf[start..HEADROOM].copy_from_slice(&head[..n]);
        Self {
            wire: Bytes::from(buf).slice(start..),
            head: n as u8,
        }
    }

    /// A frame holding a copy of `payload` (replies: built once, sent once).
    pub(crate) fn text(payload: &[u8]) -> Self {
        let mut buf = Self::buffer(payload.len());
        buf.extend_from_slice(payload);
        Self::seal(buf)
    }

    /// The whole frame as it goes on the wire.
    pub(crate) fn wire(&self) -> &Bytes {
        &self.wire
    }

    /// The JSON message (shares the frame's buffer).
    pub(crate) fn payload(&self) -> Bytes {
        self.wire.slice(usize::from(self.head)..)
    }

    /// The JSON message's length.
    pub(crate) fn payload_len(&self) -> usize {
        self.wire.len() - usize::from(self.head)
    }
}

pub(crate) fn missed_frame(count: u64) -> Bytes {
    Bytes::from(format!(r#"{{"v":1,"type":"missed","count":{count}}}"#))
}

pub(crate) fn error_frame(code: &str, message: &str) -> Bytes {
    let mut out = Vec::with_capacity(64 + message.len());
    out.extend_from_slice(br#"{"v":1,"type":"error","code":"#);
    json_str(&mut out, code);
    out.extend_from_slice(br#","message":"#);
    json_str(&mut out, message);
    out.push(b'}');
    Bytes::from(out)
}

/// `subscribed`, `unsubscribed`, `recovered`, `recovery_impossible`,
/// `published`: a type, a topic, and a few numeric or string fields.
pub(crate) fn ack_frame(kind: &str, topic: &str, fields: &[(&str, AckValue<'_>)]) -> Bytes {
    let mut out = Vec::with_capacity(96);
    out.extend_from_slice(br#"{"v":1,"type":"#);
    json_str(&mut out, kind);
    out.extend_from_slice(br#","topic":"#);
    json_str(&mut out, topic);
    for (name, value) in fields {
        out.push(b',');
        json_str(&mut out, name);
        out.push(b':');
        match value {
            AckValue::Num(n) => out.extend_from_slice(n.to_string().as_bytes()),
            AckValue::Str(s) => json_str(&mut out, s),
        }
    }
    out.push(b'}');
    Bytes::from(out)
}

pub(crate) enum AckValue<'a> {
    Num(u64),
    Str(&'a str),
}

pub(crate) fn simple_frame(kind: &str, id: Option<u64>) -> Bytes {
    match id {
        Some(id) => Bytes::from(format!(r#"{{"v":1,"type":"{kind}","id":{id}}}"#)),
        None => Bytes::from(format!(r#"{{"v":1,"type":"{kind}"}}"#)),
    }
}

pub(crate) fn welcome_frame(connection: u64, user: Option<&str>) -> Bytes {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(
        format!(r#"{{"v":1,"type":"welcome","connection":{connection},"user":"#).as_bytes(),
    );
    match user {
        Some(u) => json_str(&mut out, u),
        None => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
    Bytes::from(out)
}

/// Checks a topic name: 1 to 256 bytes, no control characters.
pub(crate) fn check_topic(topic: &str) -> Result<(), &'static str> {
    if topic.is_empty() {
        return Err("empty");
    }
    if topic.len() > 256 {
        return Err("longer than 256 bytes");
    }
    if topic.chars().any(char::is_control) {
        return Err("holds a control character");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_valid_json() {
        let f = message_frame("a\"b", Some(("e1", 7)), r#"{"x":[1,2]}"#);
        let v: serde_json::Value = serde_json::from_slice(&f.payload()).unwrap();
        assert_eq!(v["topic"], "a\"b");
        assert_eq!(v["offset"], 7);
        assert_eq!(v["data"]["x"][1], 2);
        let e: serde_json::Value = serde_json::from_slice(&error_frame("bad_json", "line \"1\"")).unwrap();
        assert_eq!(e["code"], "bad_json");
        let a = ack_frame(
            "subscribed",
            "t",
            &[("offset", AckValue::Num(3)), ("epoch", AckValue::Str("z"))],
        );
        let a: serde_json::Value = serde_json::from_slice(&a).unwrap();
        assert_eq!((a["offset"].as_u64(), a["epoch"].as_str()), (Some(3), Some("z")));
        let w: serde_json::Value = serde_json::from_slice(&welcome_frame(4, None)).unwrap();
        assert!(w["user"].is_null());
    }

    #[test]
    fn frames_carry_their_websocket_header() {
        for len in [0, 1, 125, 126, 65_535, 65_536, 70_000] {
            let payload = vec![b'x'; len];
            let f = Frame::text(&payload);
            let w = f.wire();
            assert_eq!(w[0], 0x81, "FIN + text, len {len}");
            let (n, head) = match w[1] {
                126 => (usize::from(u16::from_be_bytes([w[2], w[3]])), 4),
                127 => (
                    usize::try_from(u64::from_be_bytes(w[2..10].try_into().unwrap())).unwrap(),
                    10,
                ),
                short => (usize::from(short), 2),
            };
            assert_eq!((n, w.len()), (len, head + len), "len {len}");
            assert_eq!(f.payload(), payload.as_slice());
            assert_eq!(f.payload_len(), len);
        }
    }

    #[test]
    fn topic_names() {
        assert!(check_topic("alerts").is_ok());
        assert!(check_topic("").is_err());
        assert!(check_topic("a\nb").is_err());
        assert!(check_topic(&"x".repeat(257)).is_err());
    }
}
