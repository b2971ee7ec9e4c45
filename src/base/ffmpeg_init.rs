//! FFmpeg's process-wide set-up, shared by the decoders (sources) and the encoders and muxers.

use ffmpeg_next as ffmpeg;
use std::sync::Once;

/// Initialises FFmpeg once per process, with its own logging off: FFmpeg prints URLs whole,
/// stream keys and SRT passphrases included, and every failure reaches the user through
/// Tally's own errors anyway.
pub fn init_ffmpeg() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        if let Err(error) = ffmpeg::init() {
            tracing::error!("FFmpeg failed to initialise: {error}");
        }
        ffmpeg::log::set_level(ffmpeg::log::Level::Quiet);
    });
}
