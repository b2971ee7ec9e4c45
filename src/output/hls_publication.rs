//! An HLS publication as a user asks for one, from the command line or the app's Settings: a
//! folder (chosen, or a temporary one removed afterwards), one rendition or a ladder of them
//! in subfolders under one master playlist, optionally served over HTTP. It prepares the
//! folder, names the stream outputs the engine writes (one [`Destination`] per rendition), and
//! owns what lives beside them: the ladder's master playlist writer, the HTTP server and the
//! uploader that pushes the folder to an origin.

use super::destination::{Destination, Endpoint, HLS_MASTER_PLAYLIST, HLS_MEDIA_PLAYLIST};
use super::hls_master::{MasterError, MasterWriter};
use super::hls_server::{HlsServer, HlsServerError};
use super::hls_upload::{HlsUploader, UploadError, UploadSettings, UploadStats, UploadTarget};
use super::stream::HlsSettings;
use crate::encode::EncodeProfile;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum HlsPublicationError {
    #[error("the HLS folder {0} is not a folder")]
    NotAFolder(PathBuf),
    #[error(
        "{folder} already holds an HLS stream ({playlist}); replace it or pick another folder"
    )]
    HoldsAStream { folder: PathBuf, playlist: PathBuf },
    #[error("cannot make the HLS folder {path}: {cause}")]
    MakeFolder {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error(transparent)]
    Server(#[from] HlsServerError),
    #[error(transparent)]
    Master(#[from] MasterError),
    #[error("HLS push to {target}: {cause}")]
    Upload { target: String, cause: UploadError },
    #[error("{0} is not an HLS push URL")]
    PushUrl(String),
}

/// Where and how the folder is pushed.
#[derive(Debug, Clone, PartialEq)]
pub struct HlsPush {
    /// Made by [`Endpoint::hls_push`].
    pub endpoint: Endpoint,
    pub settings: UploadSettings,
}

/// What to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct HlsPlan {
    /// `None`: a fresh temporary folder, removed when the publication ends (where a push or
    /// a server alone needs one).
    pub folder: Option<PathBuf>,
    /// A folder that already holds a stream is replaced only when this is set.
    pub replace: bool,
    /// Serve the folder over HTTP at this address.
    pub serve: Option<SocketAddr>,
    /// Push the folder to an origin.
    pub push: Option<HlsPush>,
    /// One rendition per profile, in this order; empty: one rendition at `profile`.
    pub ladder: Vec<EncodeProfile>,
    /// The single rendition's encode; `None`: the run's own.
    pub profile: Option<EncodeProfile>,
    pub layout: HlsSettings,
}

pub struct HlsPublication {
    folder: PathBuf,
    temporary: bool,
    destinations: Vec<Destination>,
    master: Option<MasterWriter>,
    server: Option<HlsServer>,
    uploader: Option<HlsUploader>,
}

impl HlsPublication {
    /// Prepares the folder (and a subfolder per rendition), starts the ladder's master writer
    /// and the server. The stream outputs themselves are the engine's to start, from
    /// [`Self::destinations`].
    pub fn start(plan: &HlsPlan) -> Result<Self, HlsPublicationError> {
        let (folder, temporary) = match &plan.folder {
            Some(folder) => (folder.clone(), false),
            None => (
                std::env::temp_dir().join(format!("tally-hls-{}", std::process::id())),
                true,
            ),
        };
        if folder.exists() && !folder.is_dir() {
            return Err(HlsPublicationError::NotAFolder(folder));
        }
        let playlist = [HLS_MEDIA_PLAYLIST, HLS_MASTER_PLAYLIST]
            .map(|name| folder.join(name))
            .into_iter()
            .find(|playlist| playlist.exists());
        if let (Some(playlist), false, false) = (playlist, plan.replace, temporary) {
            return Err(HlsPublicationError::HoldsAStream { folder, playlist });
        }
        let make = |path: &PathBuf| {
            std::fs::create_dir_all(path).map_err(|cause| HlsPublicationError::MakeFolder {
                path: path.clone(),
                cause,
            })
        };
        make(&folder)?;
        // From here on the publication owns the folder: dropped on an error, it removes a
        // temporary one.
        let mut publication = Self {
            folder,
            temporary,
            destinations: Vec::new(),
            master: None,
            server: None,
            uploader: None,
        };
        let mut layout = plan.layout;
        if plan.push.is_some() {
            // Every rendition from the same number, so their segments stay aligned.
            layout.first_segment = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since| since.as_secs());
        }
        let destination = |endpoint, profile: Option<EncodeProfile>| Destination {
            primary: endpoint,
            backup: None,
            profile,
            hls: Some(layout),
        };
        if plan.ladder.is_empty() {
            publication.destinations.push(destination(
                Endpoint::hls_folder(&publication.folder),
                plan.profile.clone(),
            ));
        }
        for rung in &plan.ladder {
            let rendition = publication.folder.join(&rung.name);
            make(&rendition)?;
            publication.destinations.push(destination(
                Endpoint::hls_folder(&rendition),
                Some(rung.clone()),
            ));
        }
        if !plan.ladder.is_empty() {
            publication.master = Some(MasterWriter::start(
                publication.folder.clone(),
                plan.ladder.iter().map(|rung| rung.name.clone()).collect(),
            )?);
        }
        if let Some(address) = plan.serve {
            publication.server = Some(HlsServer::start(address, publication.folder.clone())?);
        }
        if let Some(push) = &plan.push {
            let target = UploadTarget::from_endpoint(&push.endpoint)
                .ok_or_else(|| HlsPublicationError::PushUrl(push.endpoint.masked().into()))?;
            let uploader = HlsUploader::start(
                publication.folder.clone(),
                target.clone(),
                push.settings.clone(),
            )
            .map_err(|cause| HlsPublicationError::Upload {
                target: target.masked().to_string(),
                cause,
            })?;
            publication.uploader = Some(uploader);
        }
        Ok(publication)
    }

    /// The stream outputs to start: one per rendition.
    pub fn destinations(&self) -> &[Destination] {
        &self.destinations
    }

    pub fn folder(&self) -> &std::path::Path {
        &self.folder
    }

    /// The master playlist's URL, when served.
    pub fn master_url(&self) -> Option<String> {
        self.server.as_ref().map(HlsServer::master_url)
    }

    /// The push's URL with its key masked.
    pub fn push_target(&self) -> Option<&str> {
        self.uploader
            .as_ref()
            .map(|uploader| uploader.target().masked())
    }

    /// The newest push failure since the last call, for a front-end to show as it happens.
    pub fn take_problem(&self) -> Option<String> {
        self.uploader.as_ref()?.take_problem()
    }

    /// Stops the server and the master writer, and sends the push's last files (after the
    /// stream outputs have ended); removes a temporary folder. Returns what was pushed.
    pub fn stop(mut self) -> Result<Option<UploadStats>, HlsPublicationError> {
        let server = self.server.take().map(HlsServer::stop).transpose();
        let master = self.master.take().map(MasterWriter::stop).transpose();
        let pushed = self
            .uploader
            .take()
            .map(|uploader| {
                let target = uploader.target().masked().to_string();
                uploader
                    .finish()
                    .map_err(|cause| HlsPublicationError::Upload { target, cause })
            })
            .transpose();
        server?;
        master?;
        pushed
    }
}

impl Drop for HlsPublication {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            if let Err(error) = server.stop() {
                tracing::warn!("{error}");
            }
        }
        if let Some(master) = self.master.take() {
            if let Err(error) = master.stop() {
                tracing::warn!("{error}");
            }
        }
        // Its last pass reads the folder: before the folder goes.
        drop(self.uploader.take());
        if self.temporary {
            if let Err(error) = std::fs::remove_dir_all(&self.folder) {
                tracing::warn!("cannot remove {}: {error}", self.folder.display());
            }
        }
    }
}
