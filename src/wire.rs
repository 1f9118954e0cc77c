//! The gRPC wire format, written once for the server, the clients and the tests:
//! method paths, content types, message and trailer frames, gRPC-Web text, and
//! `grpc-timeout`. The server never frames a call itself (tonic and tonic-web do);
//! it reads content types and deadlines here. The clients and the tests read and
//! write raw bodies with it.
//!
//! # Frames
//! Every message travels as a frame: a flag byte (bit 0: compressed, bit 7: a
//! gRPC-Web trailer block), a big-endian `u32` length, then that many bytes. A
//! gRPC-Web answer ends with a trailer frame holding `name:value\r\n` lines. gRPC-Web
//! text is the same bytes in base64, each piece the server flushes padded on its
//! own, so a decoder takes whole 4-character quanta as they come.

use std::time::Duration;

use base64::{Engine as _, engine::general_purpose::STANDARD};

/// The methods healthweb serves, by path.
pub mod path {
    /// `grpc.health.v1.Health/Check`.
    pub const CHECK: &str = "/grpc.health.v1.Health/Check";
    /// `grpc.health.v1.Health/Watch` (server streaming).
    pub const WATCH: &str = "/grpc.health.v1.Health/Watch";
    /// `grpc.health.v1.Health/List`.
    pub const LIST: &str = "/grpc.health.v1.Health/List";
    /// `healthweb.v1.History/Transitions`.
    pub const TRANSITIONS: &str = "/healthweb.v1.History/Transitions";
    /// `healthweb.v1.History/Uptime`.
    pub const UPTIME: &str = "/healthweb.v1.History/Uptime";
    /// `healthweb.v1.History/Latency`.
    pub const LATENCY: &str = "/healthweb.v1.History/Latency";
    /// `healthweb.v1.Statuses/WatchAll` (server streaming).
    pub const WATCH_ALL: &str = "/healthweb.v1.Statuses/WatchAll";
}

/// The content types of gRPC and gRPC-Web, as the two protocol documents spell them.
pub mod content_type {
    /// Native gRPC.
    pub const GRPC: &str = "application/grpc";
    /// Native gRPC, protobuf named.
    pub const GRPC_PROTO: &str = "application/grpc+proto";
    /// gRPC-Web, binary.
    pub const GRPC_WEB: &str = "application/grpc-web";
    /// gRPC-Web, binary, protobuf named.
    pub const GRPC_WEB_PROTO: &str = "application/grpc-web+proto";
    /// gRPC-Web text (base64).
    pub const GRPC_WEB_TEXT: &str = "application/grpc-web-text";
    /// gRPC-Web text, protobuf named.
    pub const GRPC_WEB_TEXT_PROTO: &str = "application/grpc-web-text+proto";
}

/// How a call's body is framed, as its content type says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Framing {
    /// Native gRPC: message frames, the status in HTTP/2 trailers.
    Grpc,
    /// gRPC-Web binary: message frames, then a trailer frame.
    Web,
    /// gRPC-Web text: the same frames in base64.
    WebText,
}

impl Framing {
    /// The framing of `content_type`, if it is one of gRPC's (protobuf only).
    pub fn of(content_type: &str) -> Option<Self> {
        use content_type::*;
        match content_type {
            GRPC | GRPC_PROTO => Some(Self::Grpc),
            GRPC_WEB | GRPC_WEB_PROTO => Some(Self::Web),
            GRPC_WEB_TEXT | GRPC_WEB_TEXT_PROTO => Some(Self::WebText),
            _ => None,
        }
    }

    /// The content type a request in this framing is sent with.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Grpc => content_type::GRPC,
            Self::Web => content_type::GRPC_WEB_PROTO,
            Self::WebText => content_type::GRPC_WEB_TEXT,
        }
    }

    /// Whether this is one of the gRPC-Web framings.
    pub fn is_web(self) -> bool {
        self != Self::Grpc
    }
}

/// The length of a frame's header: the flag byte and the length.
pub const HEADER_LEN: usize = 5;
/// The flag bit of a compressed message.
pub const COMPRESSED: u8 = 0x01;
/// The flag bit of a gRPC-Web trailer frame.
pub const TRAILERS: u8 = 0x80;

/// A frame with `flags` around `payload`.
pub fn frame(flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.push(flags);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// An uncompressed message frame: what a request body holds.
pub fn message_frame(message: &[u8]) -> Vec<u8> {
    frame(0, message)
}

/// A gRPC-Web trailer frame of `name:value\r\n` lines.
pub fn trailer_frame<'a>(trailers: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<u8> {
    let block: String = trailers
        .into_iter()
        .map(|(name, value)| format!("{name}:{value}\r\n"))
        .collect();
    frame(TRAILERS, block.as_bytes())
}

/// One frame, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A message, as sent (still compressed when `compressed`).
    Message {
        /// The compressed flag.
        compressed: bool,
        /// The message bytes.
        bytes: Vec<u8>,
    },
    /// A gRPC-Web trailer block: names in lower case, values trimmed.
    Trailers(Vec<(String, String)>),
}

/// The `name:value` lines of a gRPC-Web trailer block: names in lower case,
/// values trimmed (the gRPC-Web protocol: "HTTP/1 header lines", which end in
/// CRLF; a bare LF is taken too, as RFC 9112 lets a recipient). Read as bytes:
/// the browser module then holds no string searcher for it.
pub fn parse_trailers(block: &[u8]) -> Vec<(String, String)> {
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes.trim_ascii()).into_owned();
    block
        .split(|&byte| byte == b'\n')
        .filter_map(|line| {
            let colon = line.iter().position(|&byte| byte == b':')?;
            let (name, value) = (&line[..colon], &line[colon + 1..]);
            Some((text(name).to_ascii_lowercase(), text(value)))
        })
        .collect()
}

/// Cuts a byte stream, arriving in chunks of any size, into frames.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
}

impl FrameDecoder {
    /// Adds the next chunk.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next whole frame, or `None` until more bytes arrive.
    pub fn next_frame(&mut self) -> Option<Frame> {
        let header: [u8; HEADER_LEN] = self.buf.get(..HEADER_LEN)?.try_into().ok()?;
        let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        let payload = self.buf.get(HEADER_LEN..HEADER_LEN + len)?.to_vec();
        self.buf.drain(..HEADER_LEN + len);
        Some(if header[0] & TRAILERS == 0 {
            Frame::Message {
                compressed: header[0] & COMPRESSED != 0,
                bytes: payload,
            }
        } else {
            Frame::Trailers(parse_trailers(&payload))
        })
    }

    /// Bytes received that make no whole frame (a cut answer leaves some).
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

/// gRPC-Web text: the base64 of `bytes`, padded.
pub fn text_encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes gRPC-Web text as it arrives: whole 4-character quanta at once, the rest
/// kept for the next chunk. Each piece the server flushes is padded on its own, so a
/// quantum never holds the end of one piece and the start of the next.
#[derive(Debug, Default)]
pub struct TextDecoder {
    pending: Vec<u8>,
}

impl TextDecoder {
    /// The bytes of the whole quanta received so far, with `chunk`.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<u8>, base64::DecodeError> {
        self.pending.extend_from_slice(chunk);
        let whole = self.pending.len() / 4 * 4;
        let mut out = Vec::with_capacity(whole / 4 * 3);
        for quantum in self.pending[..whole].chunks(4) {
            out.extend(STANDARD.decode(quantum)?);
        }
        self.pending.drain(..whole);
        Ok(out)
    }

    /// Whether the text ended between quanta, as it must.
    pub fn is_whole(&self) -> bool {
        self.pending.is_empty()
    }
}

/// The longest `grpc-timeout` value: 8 digits.
const TIMEOUT_MAX: u64 = 99_999_999;

/// A `grpc-timeout` value (`1S`, `250m`...) as the gRPC over HTTP/2 protocol spells
/// it: 1 to 8 digits and a unit letter. `None` for anything else.
pub fn parse_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// `limit` as a `grpc-timeout` value: whole milliseconds (rounded up, so never zero)
/// while they fit the spec's 8 digits, then seconds, then hours. Written here rather
/// than through tonic's `Request::set_timeout`, whose nanosecond-first `u128`
/// arithmetic and formatting the browser module would carry for a header it fills
/// the same way.
pub fn format_timeout(limit: Duration) -> String {
    let secs = limit.as_secs();
    let ms = secs
        .saturating_mul(1000)
        .saturating_add(u64::from(limit.subsec_nanos().div_ceil(1_000_000)))
        .max(1);
    let (value, unit) = match () {
        () if ms <= TIMEOUT_MAX => (ms, 'm'),
        () if secs <= TIMEOUT_MAX => (secs, 'S'),
        () => ((secs / 3600).min(TIMEOUT_MAX), 'H'),
    };
    format!("{value}{unit}")
}

/// A `grpc-message` value, percent-decoded (it is percent-encoded UTF-8).
pub fn percent_decode(message: &str) -> String {
    let bytes = message.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let digit = |byte: u8| char::from(byte).to_digit(16);
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| Some((digit(h[0])? * 16 + digit(h[1])?) as u8));
        match (bytes[i], hex) {
            (b'%', Some(byte)) => (out.push(byte), i += 3),
            (byte, _) => (out.push(byte), i += 1),
        };
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_cut_anywhere() {
        let mut bytes = message_frame(&[8, 1]);
        bytes.extend(trailer_frame([
            ("grpc-status", "5"),
            ("grpc-message", "unknown%20service"),
        ]));
        let mut decoder = FrameDecoder::default();
        let mut frames = Vec::new();
        for chunk in bytes.chunks(3) {
            decoder.push(chunk);
            frames.extend(std::iter::from_fn(|| decoder.next_frame()));
        }
        assert_eq!(
            frames,
            [
                Frame::Message {
                    compressed: false,
                    bytes: vec![8, 1]
                },
                Frame::Trailers(vec![
                    ("grpc-status".into(), "5".into()),
                    ("grpc-message".into(), "unknown%20service".into())
                ])
            ]
        );
        assert_eq!(decoder.pending(), 0);
        assert_eq!(percent_decode("unknown%20service"), "unknown service");
    }

    #[test]
    fn trailer_lines_and_percent_escapes_as_written_by_anyone() {
        // Names folded to lower case, values trimmed; a bare LF ends a line too, a
        // line without a colon is no trailer.
        assert_eq!(
            parse_trailers(b"Grpc-Status: 3\r\ngrpc-message:bad%20input \nnoise\r\n"),
            [
                ("grpc-status".to_owned(), "3".to_owned()),
                ("grpc-message".to_owned(), "bad%20input".to_owned()),
            ]
        );
        // UTF-8 escaped byte by byte; an escape that is not two hex digits stays as it is.
        assert_eq!(
            percent_decode("caf%C3%A9 %zz %+1 100%"),
            "café %zz %+1 100%"
        );
    }

    #[test]
    fn text_in_padded_pieces() {
        // What tonic-web writes for a Check: the message and the trailers, each padded.
        let text = b"AAAAAAIIAQ==gAAAAA9ncnBjLXN0YXR1czowDQo=";
        let mut decoder = TextDecoder::default();
        let mut bytes = Vec::new();
        for chunk in text.chunks(5) {
            bytes.extend(decoder.push(chunk).unwrap());
        }
        assert!(decoder.is_whole());
        let mut frames = FrameDecoder::default();
        frames.push(&bytes);
        assert!(
            matches!(frames.next_frame(), Some(Frame::Message { bytes, .. }) if bytes == [8, 1])
        );
        assert_eq!(
            frames.next_frame(),
            Some(Frame::Trailers(vec![("grpc-status".into(), "0".into())]))
        );
        assert!(decoder.push(b"A*==").is_err());
    }

    #[test]
    fn timeouts() {
        for (value, want) in [
            ("3S", Some(Duration::from_secs(3))),
            ("250m", Some(Duration::from_millis(250))),
            ("2H", Some(Duration::from_secs(7200))),
            ("123456789S", None),
            ("S", None),
            ("5x", None),
            ("+5S", None),
        ] {
            assert_eq!(parse_timeout(value), want, "{value}");
        }
        assert_eq!(format_timeout(Duration::from_millis(300)), "300m");
        assert_eq!(format_timeout(Duration::from_micros(1)), "1m");
        assert_eq!(format_timeout(Duration::from_micros(1500)), "2m");
        assert_eq!(format_timeout(Duration::from_secs(100_000)), "100000S");
        assert_eq!(format_timeout(Duration::from_secs(u64::MAX)), "99999999H");
    }
}
