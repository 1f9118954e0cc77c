//! The codec of every generated client and server here: tonic's prost codec
//! (`tonic_prost::ProstCodec::raw_encoder` and `raw_decoder`, as tonic's
//! `codec_buffers` example builds one), with buffers sized for health messages.
//!
//! tonic allocates a call's encode and decode buffers when the call starts
//! (8 KiB each by default) and an encode buffer lives as long as the call: for a
//! Watch stream, as long as anyone watches. Health's messages are a few bytes (a
//! Check answer is 2), so 8 KiB a stream would be most of what a hundred thousand
//! Watch streams cost. Larger messages (List, History) still fit: a buffer grows
//! as a message needs.

use std::marker::PhantomData;

use prost::Message;
use tonic::codec::{BufferSettings, Codec};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// The first allocation of a call's buffers, in bytes: a few messages of Health.
pub const BUFFER_SIZE: usize = 64;

/// A buffer is handed on once it holds this much (tonic's default, 32 KiB).
const YIELD_THRESHOLD: usize = 32 * 1024;

/// tonic's prost codec with [`BUFFER_SIZE`] buffers.
#[derive(Debug, Clone)]
pub struct HealthCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for HealthCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

/// [`BUFFER_SIZE`] first buffers: also the native client's, whose monitor holds a
/// Watch stream per upstream.
pub fn buffers() -> BufferSettings {
    BufferSettings::new(BUFFER_SIZE, YIELD_THRESHOLD)
}

impl<T, U> Codec for HealthCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(buffers())
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstCodec::<T, U>::raw_decoder(buffers())
    }
}
