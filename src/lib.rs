//! Tally: a live-production switcher and streaming encoder.
//!
//! The pipeline, in the order data flows: [`scene`] (what to show, from files) →
//! [`sources`] (pictures and sound) → [`render`] (GPU compositor) and [`audio`] (mixer) →
//! [`encode`] (H.264, AAC) → [`output`] (recording, streaming). [`engine`] wires them together
//! behind one handle that the command line and the desktop app ([`ui`]) drive.

pub mod audio;
pub mod encode;
pub mod engine;
pub mod output;
pub mod render;
pub mod scene;
pub mod show;
pub mod signals;
pub mod sources;
pub mod ui;

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks a mutex whether or not another thread panicked while holding it. Every value Tally
/// shares this way stays meaningful after such a panic (counters, queues, textures that the
/// next frame uploads again), and the show must keep running.
pub(crate) fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
