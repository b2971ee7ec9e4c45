//! The master playlist of an HLS ladder: one variant per rendition, each rendition an HLS
//! output of its own in a subfolder. FFmpeg's HLS muxer writes a one-variant master beside
//! each rendition's media playlist once it knows the stream (bandwidth, resolution, codecs);
//! this joins those into the ladder's master (`FOLDER/master.m3u8`, variants in the ladder's
//! order, URIs into the subfolders), written under a temporary name and renamed when whole.
//!
//! The writer thread looks for the renditions' masters every [`LOOK_EVERY`] until all are
//! there, writes the ladder's once, and ends.

use super::destination::HLS_MASTER_PLAYLIST;
use crate::base::lock;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

const LOOK_EVERY: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    #[error("cannot start the HLS master playlist's thread: {0}")]
    Spawn(std::io::Error),
    #[error("writing the HLS master playlist {path}: {cause}")]
    Write {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("the HLS master playlist's thread panicked")]
    Panicked,
}

/// The ladder's master from each rendition's one-variant master (name, text), or `None`
/// while one of them has no variant yet.
pub fn combine_masters(renditions: &[(String, String)]) -> Option<String> {
    let mut version = 3;
    let mut variants = Vec::new();
    for (name, text) in renditions {
        let mut lines = text.lines().map(str::trim);
        let mut stream_info = None;
        for line in lines.by_ref() {
            if let Some(number) = line.strip_prefix("#EXT-X-VERSION:") {
                version = version.max(number.parse().unwrap_or(3));
            }
            if line.starts_with("#EXT-X-STREAM-INF:") {
                stream_info = Some(line.to_string());
                break;
            }
        }
        let uri = lines.find(|line| !line.is_empty() && !line.starts_with('#'))?;
        variants.push(format!("{}\n{name}/{uri}\n", stream_info?));
    }
    Some(format!(
        "#EXTM3U\n#EXT-X-VERSION:{version}\n#EXT-X-INDEPENDENT-SEGMENTS\n{}",
        variants.concat()
    ))
}

pub struct MasterWriter {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<Result<(), MasterError>>>,
}

impl MasterWriter {
    /// Starts writing `folder`'s master for the renditions in the subfolders `renditions`.
    pub fn start(folder: PathBuf, renditions: Vec<String>) -> Result<Self, MasterError> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let thread = std::thread::Builder::new()
            .name("hls-master".into())
            .spawn({
                let stop = stop.clone();
                move || write_when_ready(&folder, &renditions, &stop)
            })
            .map_err(MasterError::Spawn)?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops looking (if the master is not written yet) and reports how the thread ended.
    pub fn stop(mut self) -> Result<(), MasterError> {
        self.shut_down()
    }

    fn shut_down(&mut self) -> Result<(), MasterError> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        *lock(&self.stop.0) = true;
        self.stop.1.notify_all();
        thread.join().map_err(|_| MasterError::Panicked)?
    }
}

impl Drop for MasterWriter {
    fn drop(&mut self) {
        if let Err(error) = self.shut_down() {
            tracing::warn!("{error}");
        }
    }
}

fn write_when_ready(
    folder: &Path,
    renditions: &[String],
    stop: &(Mutex<bool>, Condvar),
) -> Result<(), MasterError> {
    loop {
        let masters: Option<Vec<(String, String)>> = renditions
            .iter()
            .map(|name| {
                let text =
                    std::fs::read_to_string(folder.join(name).join(HLS_MASTER_PLAYLIST)).ok()?;
                Some((name.clone(), text))
            })
            .collect();
        if let Some(text) = masters.as_deref().and_then(combine_masters) {
            let path = folder.join(HLS_MASTER_PLAYLIST);
            let temporary = folder.join(format!("{HLS_MASTER_PLAYLIST}.tmp"));
            let fail = |cause| MasterError::Write {
                path: path.clone(),
                cause,
            };
            std::fs::write(&temporary, text).map_err(fail)?;
            return std::fs::rename(&temporary, &path).map_err(fail);
        }
        let stopped = lock(&stop.0);
        let (stopped, _) = stop
            .1
            .wait_timeout(stopped, LOOK_EVERY)
            .unwrap_or_else(|error| error.into_inner());
        if *stopped {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_variant(bandwidth: u32, resolution: &str) -> String {
        format!(
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-STREAM-INF:BANDWIDTH={bandwidth},\
             RESOLUTION={resolution},CODECS=\"avc1.64001f,mp4a.40.2\"\nmedia.m3u8\n\n"
        )
    }

    #[test]
    fn the_ladder_lists_every_rendition_in_order_under_its_folder() {
        let master = combine_masters(&[
            ("720p".into(), one_variant(3_400_000, "1280x720")),
            ("480p".into(), one_variant(1_500_000, "854x480")),
        ])
        .unwrap();
        assert_eq!(
            master,
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-STREAM-INF:BANDWIDTH=3400000,RESOLUTION=1280x720,CODECS=\"avc1.64001f,mp4a.40.2\"\n\
             720p/media.m3u8\n\
             #EXT-X-STREAM-INF:BANDWIDTH=1500000,RESOLUTION=854x480,CODECS=\"avc1.64001f,mp4a.40.2\"\n\
             480p/media.m3u8\n"
        );
    }

    #[test]
    fn nothing_is_written_until_every_rendition_has_its_variant() {
        assert_eq!(
            combine_masters(&[
                ("720p".into(), one_variant(3_400_000, "1280x720")),
                ("480p".into(), "#EXTM3U\n".into()),
            ]),
            None
        );
    }
}
