//! The bottom layer: what every stage of the pipeline shares and nothing else owns. Pictures
//! as sources hand them over ([`VideoFrame`], [`FrameRef`], [`Packing`]), time on the engine's
//! clock ([`FrameRate`], [`Tick`], [`Pacing`]), the one sound format ([`SAMPLE_RATE`],
//! [`AUDIO_CHANNELS`]), the I420 layout the compositor writes and the encoders read, and
//! FFmpeg's process-wide set-up. It imports nothing from the rest of Tally.

mod audio_format;
mod ffmpeg_init;
mod frame;
mod i420;
mod timing;

pub use audio_format::{AUDIO_CHANNELS, SAMPLE_RATE};
pub use ffmpeg_init::init_ffmpeg;
pub use frame::{FrameRef, Packing, VideoFrame};
pub use i420::I420Layout;
pub use timing::{FrameRate, Pacing, Tick};

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks a mutex whether or not another thread panicked while holding it. Every value Tally
/// shares this way stays meaningful after such a panic (counters, queues, textures that the
/// next frame uploads again), and the show must keep running.
pub(crate) fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
