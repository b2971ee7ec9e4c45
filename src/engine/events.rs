//! How the render thread tells front-ends what happened, without ever waiting on them and
//! without losing a change of state.
//!
//! The engine's event queue is bounded, and a front-end may fall behind (a busy window, a
//! paused terminal). Two kinds of event go through it:
//! - meter readings ([`Event::AudioLevels`], twenty a second): the latest ones are also in
//!   [`super::Stats`], so one that finds the queue filling is dropped;
//! - everything else (a recording ended, a scene went on air, a warning): these are never
//!   dropped. One that finds the queue full waits in an overflow list, in order, and goes out
//!   before anything newer once the front-end reads again.
//!
//! Meter readings may use the queue only while it has [`RESERVED_FOR_STATE`] free places, so a
//! flood of them cannot fill the queue ahead of a change of state.

use super::Event;
use crate::base::lock;
use crossbeam_channel::{Sender, TrySendError};
use std::collections::VecDeque;
use std::sync::Mutex;

/// Places in the queue meter readings leave free for changes of state.
pub(crate) const RESERVED_FOR_STATE: usize = 64;
/// Changes of state kept while nobody reads; past this a front-end has stopped listening for
/// so long (minutes of warnings) that the oldest warnings go first.
const OVERFLOW_LIMIT: usize = 4096;

/// The sending side of the engine's event queue (see the module's documentation).
pub(crate) struct EventSink {
    sender: Sender<Event>,
    overflow: Mutex<VecDeque<Event>>,
}

impl EventSink {
    pub(crate) fn new(sender: Sender<Event>) -> Self {
        Self {
            sender,
            overflow: Mutex::new(VecDeque::new()),
        }
    }

    /// Sends a change of state or a warning: now if the queue has room, else as soon as the
    /// front-end makes room, before anything sent after it.
    pub(crate) fn send(&self, event: Event) {
        let mut overflow = lock(&self.overflow);
        self.drain(&mut overflow);
        if overflow.is_empty() {
            match self.sender.try_send(event) {
                Ok(()) => return,
                // Nobody holds the engine's handle any more: nobody to tell.
                Err(TrySendError::Disconnected(_)) => return,
                Err(TrySendError::Full(event)) => overflow.push_back(event),
            }
        } else {
            overflow.push_back(event);
        }
        if overflow.len() > OVERFLOW_LIMIT {
            let oldest_warning = overflow
                .iter()
                .position(|event| matches!(event, Event::Warning(_)));
            // Only warnings are given up, and only after thousands went unread; a change of
            // state (a recording ended) is kept however long the front-end takes.
            if let Some(position) = oldest_warning {
                overflow.remove(position);
            }
        }
    }

    /// Sends meter readings if the queue has room to spare for them; drops them otherwise
    /// (the latest readings are in the engine's stats too).
    pub(crate) fn send_levels(&self, event: Event) {
        let mut overflow = lock(&self.overflow);
        self.drain(&mut overflow);
        let capacity = self.sender.capacity().unwrap_or(usize::MAX);
        let room = capacity.saturating_sub(self.sender.len());
        if overflow.is_empty() && room > RESERVED_FOR_STATE {
            // Full or disconnected: a meter reading is not worth keeping either way (the
            // latest is in the engine's stats).
            if self.sender.try_send(event).is_err() {
                tracing::trace!("a meter reading was left out");
            }
        }
    }

    /// Moves what waited in the overflow list into the queue, as far as it has room; the
    /// render loop calls this every frame.
    pub(crate) fn flush(&self) {
        let mut overflow = lock(&self.overflow);
        self.drain(&mut overflow);
    }

    fn drain(&self, overflow: &mut VecDeque<Event>) {
        while let Some(event) = overflow.pop_front() {
            match self.sender.try_send(event) {
                Ok(()) => {}
                Err(TrySendError::Full(event)) => {
                    overflow.push_front(event);
                    return;
                }
                Err(TrySendError::Disconnected(_)) => {
                    overflow.clear();
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::meter::Meter;
    use crate::audio::MixerLevels;
    use crossbeam_channel::bounded;
    use std::path::PathBuf;

    fn levels() -> Event {
        Event::AudioLevels(MixerLevels {
            master: Meter::new().take(),
            sources: Vec::new(),
        })
    }

    fn stopped(name: &str) -> Event {
        Event::RecordingStopped {
            path: PathBuf::from(name),
            error: None,
        }
    }

    #[test]
    fn a_flood_of_meter_readings_never_crowds_out_a_change_of_state() {
        let (sender, receiver) = bounded(256);
        let sink = EventSink::new(sender);
        for _ in 0..10_000 {
            sink.send_levels(levels());
        }
        sink.send(stopped("a.mp4"));
        let received: Vec<Event> = receiver.try_iter().collect();
        assert_eq!(received.len(), 256 - RESERVED_FOR_STATE + 1);
        assert_eq!(received.last(), Some(&stopped("a.mp4")));
    }

    #[test]
    fn changes_of_state_wait_in_order_while_the_queue_is_full() {
        let (sender, receiver) = bounded(4);
        let sink = EventSink::new(sender);
        for index in 0..10 {
            sink.send(stopped(&index.to_string()));
        }
        // Meter readings do not jump the queue of waiting changes.
        sink.send_levels(levels());
        let mut received = Vec::new();
        while received.len() < 10 {
            received.extend(receiver.try_iter());
            sink.flush();
        }
        let expected: Vec<Event> = (0..10).map(|index| stopped(&index.to_string())).collect();
        assert_eq!(received, expected);
        assert!(receiver.try_recv().is_err());
    }

    #[test]
    fn after_thousands_unread_only_warnings_are_given_up() {
        let (sender, receiver) = bounded(1);
        let sink = EventSink::new(sender);
        sink.send(Event::Warning("first".into()));
        sink.send(stopped("kept.mp4"));
        for index in 0..OVERFLOW_LIMIT + 10 {
            sink.send(Event::Warning(format!("warning {index}")));
        }
        let mut received = Vec::new();
        loop {
            let before = received.len();
            received.extend(receiver.try_iter());
            sink.flush();
            if received.len() == before && receiver.is_empty() {
                break;
            }
        }
        assert!(received.contains(&stopped("kept.mp4")));
        assert_eq!(received.len(), OVERFLOW_LIMIT + 1);
    }
}
