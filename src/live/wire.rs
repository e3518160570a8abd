//! WebSocket framing on the live channel's own HTTP connection: the client's messages
//! decoded from the request body, and the server's frames encoded for the response body
//! (a broadcast once, as bytes every connection shares).

use actix_codec::Decoder;
use actix_http::ws::{CloseCode, CloseReason, Codec, Frame, Item, OpCode, Parser};
use actix_web::web::{Bytes, BytesMut};
use bytestring::ByteString;
use futures_util::{Stream, StreamExt};

/// A whole message from the client (fragments already joined).
#[derive(Debug)]
pub enum Inbound {
    Text(ByteString),
    Binary,
    Ping(Bytes),
    Pong,
    Close,
}

/// Decodes the request body of an upgraded connection (`web::Payload`) into the
/// client's messages.
pub struct Inbox<S> {
    payload: S,
    buf: BytesMut,
    codec: Codec,
    /// A fragmented message being joined: whether it is text, and its bytes so far.
    partial: Option<(bool, BytesMut)>,
    max_bytes: usize,
}

impl<S, E> Inbox<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    /// Messages (and each frame of one) may be at most `max_bytes` long.
    pub fn new(payload: S, max_bytes: usize) -> Self {
        Self {
            payload,
            buf: BytesMut::new(),
            codec: Codec::new().max_size(max_bytes),
            partial: None,
            max_bytes,
        }
    }

    /// The next message; `None` once the connection ends or breaks the protocol (an
    /// oversized or malformed frame, text that is not UTF-8).
    pub async fn next(&mut self) -> Option<Inbound> {
        loop {
            while let Some(frame) = self.codec.decode(&mut self.buf).ok()? {
                if let Some(message) = self.join(frame)? {
                    return Some(message);
                }
            }
            let chunk = self.payload.next().await?.ok()?;
            if self.buf.is_empty() {
                self.buf = BytesMut::from(chunk);
            } else {
                self.buf.extend_from_slice(&chunk);
            }
        }
    }

    /// The message a frame completes, `Some(None)` when it continues one, `None` when it
    /// breaks the protocol.
    fn join(&mut self, frame: Frame) -> Option<Option<Inbound>> {
        let (is_text, bytes) = match frame {
            Frame::Text(bytes) => (true, bytes),
            Frame::Binary(_) => return Some(Some(Inbound::Binary)),
            Frame::Ping(bytes) => return Some(Some(Inbound::Ping(bytes))),
            Frame::Pong(_) => return Some(Some(Inbound::Pong)),
            Frame::Close(_) => return Some(Some(Inbound::Close)),
            Frame::Continuation(Item::FirstText(bytes)) => {
                self.partial = Some((true, BytesMut::from(bytes)));
                return Some(None);
            }
            Frame::Continuation(Item::FirstBinary(bytes)) => {
                self.partial = Some((false, BytesMut::from(bytes)));
                return Some(None);
            }
            Frame::Continuation(Item::Continue(bytes)) => {
                let (_, joined) = self.partial.as_mut()?;
                if joined.len() + bytes.len() > self.max_bytes {
                    return None;
                }
                joined.extend_from_slice(&bytes);
                return Some(None);
            }
            Frame::Continuation(Item::Last(bytes)) => {
                let (is_text, mut joined) = self.partial.take()?;
                if joined.len() + bytes.len() > self.max_bytes {
                    return None;
                }
                joined.extend_from_slice(&bytes);
                (is_text, joined.freeze())
            }
        };
        if !is_text {
            return Some(Some(Inbound::Binary));
        }
        ByteString::try_from(bytes).ok().map(|text| Some(Inbound::Text(text)))
    }
}

/// A text frame as the server sends it (unmasked, unfragmented).
pub fn text_frame(text: &str) -> Bytes {
    let mut frame = BytesMut::with_capacity(text.len() + 10);
    put_text(&mut frame, text);
    frame.freeze()
}

pub fn put_text(buf: &mut BytesMut, text: &str) {
    Parser::write_message(buf, text, OpCode::Text, true, false);
}

pub fn put_ping(buf: &mut BytesMut) {
    Parser::write_message(buf, b"", OpCode::Ping, true, false);
}

/// Answers a ping with its own payload (at most 125 bytes, as the decoder enforces).
pub fn put_pong(buf: &mut BytesMut, payload: &[u8]) {
    Parser::write_message(buf, payload, OpCode::Pong, true, false);
}

/// A close frame: a code and why, which the client may show.
pub fn put_close(buf: &mut BytesMut, code: Option<(CloseCode, &str)>) {
    let reason = code.map(|(code, why)| CloseReason { code, description: Some(why.to_owned()) });
    Parser::write_close(buf, reason, false);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_frame(op: OpCode, fin: bool, payload: &[u8]) -> Bytes {
        let mut frame = BytesMut::new();
        Parser::write_message(&mut frame, payload, op, fin, true);
        frame.freeze()
    }

    type Chunks = futures_util::stream::Iter<std::vec::IntoIter<Result<Bytes, ()>>>;

    /// The frames as the body would bring them, split at odd places.
    fn inbox_of(frames: Vec<Bytes>, max: usize) -> Inbox<Chunks> {
        let all: Vec<u8> = frames.iter().flat_map(|f| f.iter().copied()).collect();
        let chunks: Vec<Result<Bytes, ()>> =
            all.chunks(7).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        Inbox::new(futures_util::stream::iter(chunks), max)
    }

    #[actix_web::test]
    async fn fragments_are_joined_and_limits_hold() {
        let mut inbox = inbox_of(
            vec![
                client_frame(OpCode::Text, false, b"{\"type\":"),
                client_frame(OpCode::Ping, true, b"hb"),
                client_frame(OpCode::Continue, true, b"\"resume\"}"),
                client_frame(OpCode::Text, true, "é".as_bytes()),
            ],
            64,
        );
        assert!(matches!(inbox.next().await, Some(Inbound::Ping(p)) if &p[..] == b"hb"));
        assert!(
            matches!(inbox.next().await, Some(Inbound::Text(t)) if t == "{\"type\":\"resume\"}")
        );
        assert!(matches!(inbox.next().await, Some(Inbound::Text(t)) if t == "é"));
        assert!(inbox.next().await.is_none());

        // A message over the limit, whole or joined, ends the connection.
        let mut inbox = inbox_of(vec![client_frame(OpCode::Text, true, &[b'a'; 65])], 64);
        assert!(inbox.next().await.is_none());
        let mut inbox = inbox_of(
            vec![
                client_frame(OpCode::Text, false, &[b'a'; 40]),
                client_frame(OpCode::Continue, true, &[b'a'; 40]),
            ],
            64,
        );
        assert!(inbox.next().await.is_none());
        // Text that is not UTF-8 too.
        let mut inbox = inbox_of(vec![client_frame(OpCode::Text, true, &[0xff, 0xfe])], 64);
        assert!(inbox.next().await.is_none());
    }

    #[test]
    fn a_shared_frame_is_what_the_decoder_reads() {
        let frame = text_frame("{\"type\":\"event\"}");
        let mut buf = BytesMut::from(&frame[..]);
        let decoded = Codec::new().client_mode().decode(&mut buf).ok().flatten();
        assert_eq!(decoded, Some(Frame::Text(Bytes::from_static(b"{\"type\":\"event\"}"))));
    }
}
