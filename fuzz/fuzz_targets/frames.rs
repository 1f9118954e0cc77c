//! The browser client's gRPC-Web frame decoder, fed any body in any chunks: it
//! never panics, never yields more message bytes than arrived, and never invents
//! a frame.
#![no_main]

use healthweb_client::frames::{Decoder, Frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, body)) = data.split_first() else {
        return;
    };
    let step = usize::from(cut).max(1);
    let mut decoder = Decoder::default();
    let mut out = 0;
    for chunk in body.chunks(step) {
        decoder.push(chunk);
        while let Some(frame) = decoder.next_frame() {
            out += 5 + match frame {
                Frame::Message(bytes) => bytes.len(),
                Frame::End(_) => 0,
            };
        }
    }
    assert!(
        out <= body.len(),
        "{out} bytes of frames from {} bytes",
        body.len()
    );
});
