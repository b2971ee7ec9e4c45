//! Tally: a live-production switcher and streaming encoder.
//!
//! The pipeline, in the order data flows: [`scene`] (what to show, from files) →
//! [`sources`] (pictures and sound) → [`render`] (GPU compositor) and [`audio`] (mixer) →
//! [`encode`] (H.264, AAC) → [`output`] (recording, streaming). [`engine`] wires them together
//! behind one handle that the command line and the desktop app ([`ui`]) drive.

pub mod audio;
pub mod base;
pub mod encode;
pub mod engine;
pub mod output;
pub mod render;
pub mod scene;
pub mod show;
pub mod signals;
pub mod sources;
#[cfg(feature = "app")]
pub mod ui;
