//! Tally: a live-production switcher and streaming encoder.
//!
//! The pipeline, in the order data flows, on a bottom layer every stage shares ([`base`]):
//! [`scene`] (what to show, from files) → [`sources`] (pictures and sound) → [`render`] (GPU
//! compositor) and [`audio`] (mixer) → [`encode`] (H.264, AAC) → [`output`] (recording,
//! streaming). [`engine`] wires them together behind one handle; [`show`] drives it from show
//! scripts and [`control`] (the show controller) owns a show for the front-ends: the command
//! line, the desktop app (`ui`, the `app` feature) and remote control ([`remote`], the
//! obs-websocket protocol). Imports point down this list only
//! (`tests/layers.rs`).

pub mod audio;
pub mod base;
pub mod control;
pub mod encode;
pub mod engine;
pub mod output;
pub mod remote;
pub mod render;
pub mod scene;
pub mod show;
pub mod signals;
pub mod sources;
#[cfg(feature = "app")]
pub mod ui;
