//! A gRPC-Web answer as the client reads it: the frames of [`healthweb_proto::wire`]
//! (pure and platform-free, so unit-tested natively), with the last one's
//! `grpc-status` and `grpc-message` turned into the call's outcome.

use healthweb_proto::wire::{self, FrameDecoder};
use tonic::Code;

use crate::Error;

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
pub struct Decoder(FrameDecoder);

impl Decoder {
    /// Adds the next chunk of the response body.
    pub fn push(&mut self, chunk: &[u8]) {
        self.0.push(chunk);
    }

    /// The next complete frame, or `None` until more bytes arrive.
    pub fn next_frame(&mut self) -> Option<Frame> {
        Some(match self.0.next_frame()? {
            // This client asks for no compression, so a compressed message is the
            // server's mistake, and unreadable.
            wire::Frame::Message {
                compressed: true, ..
            } => Frame::End(Err(Error::new(
                Code::Internal,
                "the server sent a compressed message, which this client did not ask for",
            ))),
            wire::Frame::Message { bytes, .. } => Frame::Message(bytes),
            wire::Frame::Trailers(trailers) => {
                let field = |name: &str| {
                    trailers
                        .iter()
                        .find(|(key, _)| key == name)
                        .map(|(_, value)| value.as_str())
                };
                Frame::End(status(field("grpc-status"), field("grpc-message")))
            }
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
        Ok(code) => Err(Error::new(
            code,
            &wire::percent_decode(message.unwrap_or("")),
        )),
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

#[cfg(test)]
mod tests {
    use healthweb_proto::pb::HealthCheckResponse;
    use prost::Message;

    use super::*;

    #[test]
    fn splits_messages_and_trailers_across_chunks() {
        let reply = HealthCheckResponse { status: 1 };
        let mut bytes = wire::message_frame(&reply.encode_to_vec());
        bytes.extend(wire::trailer_frame([
            ("grpc-status", "5"),
            ("grpc-message", "service %22x%22 unknown"),
        ]));

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
