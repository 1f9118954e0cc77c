//! gRPC-Web framing, pure and platform-free so it is unit-tested natively: each frame is
//! a flag byte (bit 7 set: trailers), a big-endian `u32` length, then the payload; the
//! last frame carries `grpc-status` and `grpc-message` as HTTP/1 header lines.

use tonic::Code;

use crate::Error;

/// Frames an encoded message for a request body.
pub fn encode(message: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(5 + message.len());
    body.push(0);
    body.extend_from_slice(&(message.len() as u32).to_be_bytes());
    body.extend_from_slice(message);
    body
}

/// One decoded frame.
#[derive(Debug, PartialEq)]
pub enum Frame {
    /// An encoded protobuf message.
    Message(Vec<u8>),
    /// The call's end: OK, or the status it failed with.
    End(Result<(), Error>),
}

/// Cuts a byte stream, arriving in arbitrary chunks, into frames.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    /// Adds the next chunk of the response body.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete frame, or `None` until more bytes arrive.
    pub fn next_frame(&mut self) -> Option<Frame> {
        let header: [u8; 5] = self.buf.get(..5)?.try_into().ok()?;
        let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        let payload = self.buf.get(5..5 + len)?.to_vec();
        self.buf.drain(..5 + len);
        Some(if header[0] & 0x80 == 0 {
            Frame::Message(payload)
        } else {
            let text = String::from_utf8_lossy(&payload);
            let field = |name: &str| {
                text.lines().find_map(|line| {
                    let (key, value) = line.split_once(':')?;
                    key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
                })
            };
            Frame::End(status(field("grpc-status"), field("grpc-message")))
        })
    }
}

/// The call's outcome from its `grpc-status` and `grpc-message` values.
pub fn status(code: Option<&str>, message: Option<&str>) -> Result<(), Error> {
    let Some(code) = code else {
        return Err(Error::new(
            Code::Internal,
            "the server ended the call without a grpc-status",
        ));
    };
    match code.parse::<i32>().map(Code::from) {
        Ok(Code::Ok) => Ok(()),
        Ok(code) => Err(Error::new(code, &percent_decode(message.unwrap_or("")))),
        Err(_) => Err(Error::new(
            Code::Internal,
            "the server sent a malformed grpc-status",
        )),
    }
}

/// The gRPC code an HTTP error status stands for (gRPC's "HTTP to gRPC status mapping").
pub fn code_for_http(status: u16) -> Code {
    match status {
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502..=504 => Code::Unavailable,
        _ => Code::Unknown,
    }
}

/// `grpc-message` is percent-encoded UTF-8.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => (out.push(byte), i += 3),
            (byte, _) => (out.push(byte), i += 1),
        };
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use healthweb_proto::pb::HealthCheckResponse;
    use prost::Message;

    use super::*;

    #[test]
    fn splits_messages_and_trailers_across_chunks() {
        let reply = HealthCheckResponse { status: 1 };
        let mut bytes = encode(&reply.encode_to_vec());
        let trailers = b"grpc-status: 5\r\ngrpc-message: service %22x%22 unknown\r\n";
        bytes.extend_from_slice(&[0x80, 0, 0, 0, trailers.len() as u8]);
        bytes.extend_from_slice(trailers);

        let mut decoder = Decoder::default();
        let mut frames = Vec::new();
        for chunk in bytes.chunks(3) {
            decoder.push(chunk);
            frames.extend(std::iter::from_fn(|| decoder.next_frame()));
        }
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0], Frame::Message(reply.encode_to_vec()));
        let Frame::End(Err(err)) = &frames[1] else {
            panic!("{:?}", frames[1])
        };
        assert_eq!(err.to_string(), "NOT_FOUND: service \"x\" unknown");
    }

    #[test]
    fn a_missing_or_ok_status() {
        assert!(status(Some("0"), None).is_ok());
        assert_eq!(status(None, None).unwrap_err().code(), Code::Internal);
        assert_eq!(code_for_http(404), Code::Unimplemented);
        assert_eq!(code_for_http(503), Code::Unavailable);
    }
}
