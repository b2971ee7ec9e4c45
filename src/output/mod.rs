//! Outputs: where encoded packets go: recordings (here) and live streams ([`stream`]), each
//! with its own thread, so one failing never stops the others.
//!
//! MP4 recordings are written fragmented (a self-contained fragment per keyframe), so a file
//! cut short by a crash or `kill -9` still plays up to its last whole fragment; a clean stop
//! rewrites it as a regular MP4 with the index at the front. MKV is written as it comes.

pub mod amf;
pub mod backoff;
pub mod bitrate;
pub mod cmaf;
pub mod destination;
pub mod flv;
pub mod hls_master;
pub mod hls_publication;
pub mod hls_server;
pub mod hls_upload;
pub mod ll_hls;
pub mod net;
pub mod rtmp;
pub mod send_queue;
pub mod stream;
pub mod window;

pub use backoff::ReconnectSettings;
pub use bitrate::AdaptiveBitrate;
pub use destination::{parse_destination, Destination, DestinationError, Endpoint};
pub use hls_server::{HlsServer, HlsServerError};
pub use send_queue::QueueSettings;
pub use stream::{
    ConnectionError, FrameTimes, HlsSettings, OutputNotice, OutputState, OutputStats,
    StreamFailure, StreamOutput, StreamSettings,
};
pub use window::{OutputWindow, ShowInstant, Verdict};

use crate::base::init_ffmpeg;

use crate::encode::{EncodedPacket, StreamInfo, StreamKind};
use ffmpeg_next as ffmpeg;
use std::path::{Path, PathBuf};

/// Tags HEVC in MP4 `hvc1` (every parameter set in the sample description, where FFmpeg puts
/// them; in-band ones are not repeated, as x265 runs with global headers), which Apple's
/// players require; FFmpeg 5.1 writes `hev1` unless the stream's tag says otherwise. The
/// clean-stop rewrite copies the tag with the rest of the stream's parameters.
///
/// ffmpeg-next has no setter for the tag, hence Tally's one unsafe block.
#[allow(unsafe_code)]
fn tag_hevc_as_hvc1(stream: &mut ffmpeg::format::stream::StreamMut) {
    let mut parameters = stream.parameters();
    // SAFETY: `parameters` points at the AVCodecParameters of a stream that the output context
    // owns and `stream` borrows mutably, so nothing else reads or writes it meanwhile;
    // `codec_tag` is a plain integer the muxer reads when it writes the header.
    unsafe {
        (*parameters.as_mut_ptr()).codec_tag = u32::from_le_bytes(*b"hvc1");
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordingFormat {
    Mp4,
    Mkv,
}

impl RecordingFormat {
    /// Picks the format from the file extension (`.mp4`/`.m4v`/`.mov` or `.mkv`).
    pub fn from_path(path: &Path) -> Option<Self> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "mp4" | "m4v" | "mov" => Some(RecordingFormat::Mp4),
            "mkv" => Some(RecordingFormat::Mkv),
            _ => None,
        }
    }

    fn muxer(self) -> &'static str {
        match self {
            RecordingFormat::Mp4 => "mp4",
            RecordingFormat::Mkv => "matroska",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("recording {path}: {cause}")]
    Recording {
        path: String,
        cause: RecordingProblem,
    },
}

/// What went wrong with a recording.
#[derive(Debug, thiserror::Error)]
pub enum RecordingProblem {
    #[error("the folder {0} does not exist")]
    NoFolder(PathBuf),
    #[error("{0}")]
    Open(ffmpeg::Error),
    #[error("writing a packet failed: {0}")]
    Write(ffmpeg::Error),
    #[error("finishing the file failed: {0}")]
    Finish(ffmpeg::Error),
    #[error("already recording to {0}")]
    AlreadyRecording(PathBuf),
    #[error(transparent)]
    Deleted(#[from] Rescue),
}

/// Why a recording whose file was deleted while it was written could not be saved again.
#[derive(Debug, thiserror::Error)]
pub enum Rescue {
    #[error("the file was deleted while recording, and cannot be found: {0}")]
    NoFdList(std::io::Error),
    #[error("the file was deleted while recording, and is no longer open")]
    NotOpen,
    #[error("the folder was removed while recording and cannot be made again: {0}")]
    Folder(std::io::Error),
    #[error("the file was deleted while recording and cannot be saved: {0}")]
    Copy(std::io::Error),
}

/// Why a finished MP4 stays fragmented.
#[derive(Debug, thiserror::Error)]
enum Defragment {
    #[error("{0}")]
    Remux(#[from] ffmpeg::Error),
    #[error("the rewritten file cannot replace it: {0}")]
    Rename(std::io::Error),
}

pub struct Recorder {
    path: PathBuf,
    format: RecordingFormat,
    context: ffmpeg::format::context::Output,
    video_stream: usize,
    audio_stream: usize,
    video_time_base: ffmpeg::Rational,
    audio_time_base: ffmpeg::Rational,
    bytes_written: u64,
    /// The show time the file starts at (seconds), subtracted from every timestamp: a
    /// recording started in mid-show starts at zero.
    start_seconds: f64,
    /// The file's length after the last packet written whole. With `flush_packets` the muxers
    /// write whole MP4 fragments and whole Matroska clusters, so the file up to here plays
    /// cleanly: what a full disk leaves beyond it is cut off ([`Recorder::abandon`]).
    whole_bytes: u64,
    /// The file as the kernel names it, to find it again if its folder is removed while it is
    /// written (see [`rescue_deleted`]).
    opened_as: Option<PathBuf>,
}

impl Recorder {
    pub fn create(
        path: &Path,
        format: RecordingFormat,
        video: &StreamInfo,
        audio: &StreamInfo,
    ) -> Result<Self, OutputError> {
        init_ffmpeg();
        let fail = |cause: RecordingProblem| OutputError::Recording {
            path: path.display().to_string(),
            cause,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            if !parent.is_dir() {
                return Err(fail(RecordingProblem::NoFolder(parent.to_path_buf())));
            }
        }
        let mut context = ffmpeg::format::output_as(path, format.muxer())
            .map_err(|e| fail(RecordingProblem::Open(e)))?;
        for info in [video, audio] {
            let codec = ffmpeg::encoder::find(info.codec);
            let mut stream = context
                .add_stream(codec)
                .map_err(|e| fail(RecordingProblem::Open(e)))?;
            stream.set_parameters(info.parameters.clone());
            stream.set_time_base(info.time_base);
            if format == RecordingFormat::Mp4 && info.codec == ffmpeg::codec::Id::HEVC {
                tag_hevc_as_hvc1(&mut stream);
            }
        }
        let mut options = ffmpeg::Dictionary::new();
        if format == RecordingFormat::Mp4 {
            options.set("movflags", "frag_keyframe+empty_moov+default_base_moof");
        }
        // Hand each packet to the OS as soon as it is muxed, so a killed process loses little.
        options.set("flush_packets", "1");
        context
            .write_header_with(options)
            .map_err(|e| fail(RecordingProblem::Open(e)))?;
        let time_base = |index: usize| {
            context
                .stream(index)
                .map_or(ffmpeg::Rational::new(1, 1000), |stream| stream.time_base())
        };
        let (video_time_base, audio_time_base) = (time_base(0), time_base(1));
        let whole_bytes = std::fs::metadata(path).map_or(0, |m| m.len());
        let opened_as = std::fs::canonicalize(path).ok();
        Ok(Self {
            path: path.to_path_buf(),
            format,
            context,
            video_stream: 0,
            audio_stream: 1,
            video_time_base,
            audio_time_base,
            bytes_written: 0,
            start_seconds: 0.0,
            whole_bytes,
            opened_as,
        })
    }

    /// The file starts at this show time (seconds) instead of zero.
    pub fn starting_at(mut self, seconds: f64) -> Self {
        self.start_seconds = seconds;
        self
    }

    pub fn write(&mut self, encoded: &EncodedPacket) -> Result<(), OutputError> {
        let mut packet = encoded.packet.clone();
        let (stream, time_base) = match encoded.kind {
            StreamKind::Video => (self.video_stream, self.video_time_base),
            StreamKind::Audio => (self.audio_stream, self.audio_time_base),
        };
        self.bytes_written += packet.size() as u64;
        let shift = (self.start_seconds / f64::from(encoded.time_base)).round() as i64;
        if shift != 0 {
            packet.set_pts(packet.pts().map(|pts| pts - shift));
            packet.set_dts(packet.dts().map(|dts| dts - shift));
        }
        packet.set_stream(stream);
        packet.rescale_ts(encoded.time_base, time_base);
        packet.set_position(-1);
        packet
            .write_interleaved(&mut self.context)
            .map_err(|error| OutputError::Recording {
                path: self.path.display().to_string(),
                cause: RecordingProblem::Write(error),
            })?;
        if let Ok(metadata) = std::fs::metadata(&self.path) {
            self.whole_bytes = metadata.len();
        }
        Ok(())
    }

    /// Gives up a recording that can no longer be written (a full disk): the file is closed
    /// and cut back to its last whole fragment or cluster, so it plays to there without errors.
    pub fn abandon(self) {
        let (path, whole_bytes) = (self.path.clone(), self.whole_bytes);
        drop(self);
        let cut = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|file| file.set_len(whole_bytes));
        if let Err(error) = cut {
            tracing::warn!(
                "{}: cannot cut the unfinished end off the recording: {error}",
                path.display()
            );
        }
    }

    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
    }

    /// Finishes the file. MP4 is then rewritten as a regular (non-fragmented) MP4; if that
    /// fails the fragmented file is kept, which plays just as well.
    pub fn finish(mut self) -> Result<(), OutputError> {
        let path = self.path.display().to_string();
        if let Err(error) = self.context.write_trailer() {
            self.abandon();
            return Err(OutputError::Recording {
                path,
                cause: RecordingProblem::Finish(error),
            });
        }
        if !self.path.exists() {
            if let Some(opened_as) = &self.opened_as {
                rescue_deleted(opened_as, &self.path).map_err(|rescue| OutputError::Recording {
                    path: path.clone(),
                    cause: rescue.into(),
                })?;
                tracing::warn!(
                    "{path} was deleted (or its folder removed) while it was recorded; it was \
                     saved there again"
                );
            }
        }
        let (format, file) = (self.format, self.path.clone());
        drop(self);
        if format == RecordingFormat::Mp4 {
            if let Err(error) = defragment_mp4(&file) {
                tracing::warn!(
                    "{path} stays a fragmented MP4 (plays everywhere, seeks slower): {error}"
                );
            }
        }
        Ok(())
    }
}

/// Saves a recording whose file was deleted while Tally still had it open (its folder removed
/// by mistake, a cleanup script): the data is still there behind the open file, reachable
/// through /proc/self/fd until it is closed, and is copied to `path` (its folder made again).
fn rescue_deleted(opened_as: &Path, path: &Path) -> Result<(), Rescue> {
    let deleted_name = format!("{} (deleted)", opened_as.display());
    let open_file = std::fs::read_dir("/proc/self/fd")
        .map_err(Rescue::NoFdList)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|fd| {
            std::fs::read_link(fd).is_ok_and(|target| target.as_os_str() == deleted_name.as_str())
        })
        .ok_or(Rescue::NotOpen)?;
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder).map_err(Rescue::Folder)?;
    }
    std::fs::copy(&open_file, path)
        .map(drop)
        .map_err(Rescue::Copy)
}

/// Rewrites a fragmented MP4 as a regular one with the index up front, replacing it only once
/// the new file is complete.
fn defragment_mp4(path: &Path) -> Result<(), Defragment> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let temporary = path.with_file_name(format!(".{file_name}.finalizing.mp4"));
    let result = (|| -> Result<(), ffmpeg::Error> {
        let mut input = ffmpeg::format::input(path)?;
        let mut output = ffmpeg::format::output_as(&temporary, "mp4")?;
        let mut time_bases = Vec::new();
        for stream in input.streams() {
            let mut out_stream =
                output.add_stream(ffmpeg::encoder::find(ffmpeg::codec::Id::None))?;
            out_stream.set_parameters(stream.parameters());
            out_stream.set_time_base(stream.time_base());
            time_bases.push(stream.time_base());
        }
        let mut options = ffmpeg::Dictionary::new();
        options.set("movflags", "faststart");
        output.write_header_with(options)?;
        for (stream, mut packet) in input.packets() {
            let index = stream.index();
            let out_time_base = output
                .stream(index)
                .map_or(time_bases[index], |s| s.time_base());
            packet.rescale_ts(time_bases[index], out_time_base);
            packet.set_position(-1);
            packet.set_stream(index);
            packet.write_interleaved(&mut output)?;
        }
        output.write_trailer()?;
        Ok(())
    })();
    match result {
        Ok(()) => std::fs::rename(&temporary, path).map_err(Defragment::Rename),
        Err(error) => {
            if let Err(cleanup) = std::fs::remove_file(&temporary) {
                tracing::debug!("{}: {cleanup}", temporary.display());
            }
            Err(error.into())
        }
    }
}
