//! File pickers: the system's open, save and folder dialogs (rfd: the XDG desktop portal, or
//! zenity where no portal runs). Each dialog runs on its own thread, so the window and the
//! monitors keep drawing while it is open; the chosen path comes back on a later frame and is
//! applied then. One dialog at a time, as in other apps.

use crossbeam_channel::{bounded, Receiver};
use std::path::{Path, PathBuf};

/// What a picked path is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PickFor {
    OpenCollection,
    SaveCollectionAs,
    NewImage,
    NewMedia,
    /// The file of the image or media source with this id.
    SourceFile(String),
    RecordingsFolder,
}

/// Files an image source opens (the `image` crate's formats built in); others are media.
pub const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg"];
const MEDIA_EXTENSIONS: &[&str] = &[
    "mp4", "mkv", "mov", "webm", "flv", "ts", "mp3", "wav", "ogg",
];

impl PickFor {
    fn title(&self) -> &'static str {
        match self {
            PickFor::OpenCollection => "Open scene collection",
            PickFor::SaveCollectionAs => "Save scene collection as",
            PickFor::NewImage => "Add an image",
            PickFor::NewMedia => "Add a media file",
            PickFor::SourceFile(_) => "Choose the source's file",
            PickFor::RecordingsFolder => "Recordings folder",
        }
    }

    fn dialog(&self, start: Option<&Path>) -> rfd::FileDialog {
        let mut dialog = rfd::FileDialog::new().set_title(self.title());
        if let Some(folder) = start.filter(|folder| folder.is_dir()) {
            dialog = dialog.set_directory(folder);
        }
        match self {
            PickFor::OpenCollection | PickFor::SaveCollectionAs => {
                dialog.add_filter("Scene collection", &["toml"])
            }
            PickFor::NewImage => dialog.add_filter("Image", IMAGE_EXTENSIONS),
            PickFor::NewMedia => dialog.add_filter("Media file", MEDIA_EXTENSIONS),
            PickFor::SourceFile(_) | PickFor::RecordingsFolder => dialog,
        }
    }
}

#[derive(Default)]
pub struct Pickers {
    open: Option<(PickFor, Receiver<Option<PathBuf>>)>,
}

impl Pickers {
    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// Opens the dialog for `purpose`, starting in `start` (a folder); nothing if one is
    /// already open.
    pub fn open(&mut self, purpose: PickFor, start: Option<&Path>) {
        if self.open.is_some() {
            return;
        }
        let dialog = purpose.dialog(start);
        let (sender, receiver) = bounded(1);
        let saving = purpose == PickFor::SaveCollectionAs;
        let folder = purpose == PickFor::RecordingsFolder;
        let spawned = std::thread::Builder::new()
            .name("file dialog".into())
            .spawn(move || {
                let picked = if folder {
                    dialog.pick_folder()
                } else if saving {
                    dialog.save_file()
                } else {
                    dialog.pick_file()
                };
                let _ = sender.send(picked);
            });
        if spawned.is_ok() {
            self.open = Some((purpose, receiver));
        }
    }

    /// The path picked in the open dialog, once it has closed with one.
    pub fn take_picked(&mut self) -> Option<(PickFor, PathBuf)> {
        let (_, receiver) = self.open.as_ref()?;
        match receiver.try_recv() {
            Ok(picked) => {
                let (purpose, _) = self.open.take()?;
                picked.map(|path| (purpose, path))
            }
            Err(crossbeam_channel::TryRecvError::Empty) => None,
            Err(crossbeam_channel::TryRecvError::Disconnected) => {
                self.open = None;
                None
            }
        }
    }
}
