//! Events to every subscriber of the show controller, each through its own queue. A subscriber
//! that reads slowly (a remote client on a bad link, a window that is minimised) loses only its
//! own meter readings: it keeps the latest one and is told how many it missed. Changes of state
//! (a scene taken, a recording stopped, a cue fired) are kept in order and never dropped; a
//! subscriber that lets [`MAX_PENDING_CHANGES`] of them pile up is cut off with
//! [`Received::Overrun`], so one dead reader cannot grow the show's memory without end.

use crate::base::lock;
use crate::engine::Event;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::Instant;

/// Changes of state a subscriber may leave unread before it is cut off: minutes of a busy show.
pub const MAX_PENDING_CHANGES: usize = 10_000;

/// Hands each event to every live subscription.
#[derive(Default)]
pub struct Hub {
    subscribers: Mutex<Vec<Weak<Inbox>>>,
}

/// One subscriber's queue.
#[derive(Default)]
struct Inbox {
    pending: Mutex<Pending>,
    arrived: Condvar,
}

#[derive(Default)]
struct Pending {
    changes: VecDeque<Event>,
    /// The newest meter reading not yet read; older ones were replaced.
    levels: Option<Event>,
    /// Meter readings replaced before they were read.
    levels_lost: u64,
    overrun: bool,
}

impl Pending {
    /// Changes of state first, in order, then the newest meter reading; or the overrun.
    fn next(&mut self) -> Option<Received> {
        if self.overrun {
            return Some(Received::Overrun);
        }
        self.changes
            .pop_front()
            .or_else(|| self.levels.take())
            .map(Received::Event)
    }
}

/// What a subscription hands back.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    Event(Event),
    /// The subscriber let too many changes of state pile up and was cut off; it should
    /// subscribe again and query the state.
    Overrun,
}

/// A front-end's end of the hub; dropping it unsubscribes.
pub struct Subscription {
    inbox: Arc<Inbox>,
}

impl Hub {
    pub fn subscribe(&self) -> Subscription {
        let inbox = Arc::new(Inbox::default());
        let mut subscribers = lock(&self.subscribers);
        subscribers.retain(|subscriber| subscriber.strong_count() > 0);
        subscribers.push(Arc::downgrade(&inbox));
        Subscription { inbox }
    }

    pub fn publish(&self, event: &Event) {
        let subscribers: Vec<Arc<Inbox>> = lock(&self.subscribers)
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        for inbox in subscribers {
            let mut pending = lock(&inbox.pending);
            if pending.overrun {
                continue;
            }
            if matches!(event, Event::AudioLevels(_)) {
                if pending.levels.replace(event.clone()).is_some() {
                    pending.levels_lost += 1;
                }
            } else if pending.changes.len() >= MAX_PENDING_CHANGES {
                pending.overrun = true;
                pending.changes.clear();
                pending.levels = None;
            } else {
                pending.changes.push_back(event.clone());
            }
            drop(pending);
            inbox.arrived.notify_all();
        }
    }

    /// Subscriptions still held.
    pub fn subscribers(&self) -> usize {
        lock(&self.subscribers)
            .iter()
            .filter(|subscriber| subscriber.strong_count() > 0)
            .count()
    }
}

impl Subscription {
    /// The next event if one is waiting: changes of state first, in order, then the newest
    /// meter reading.
    pub fn try_next(&self) -> Option<Received> {
        lock(&self.inbox.pending).next()
    }

    /// Waits until `deadline` for the next event.
    pub fn next_before(&self, deadline: Instant) -> Option<Received> {
        let mut pending = lock(&self.inbox.pending);
        loop {
            if let Some(received) = pending.next() {
                return Some(received);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            pending = self
                .inbox
                .arrived
                .wait_timeout(pending, deadline - now)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|poisoned| poisoned.into_inner().0);
        }
    }

    /// Meter readings this subscriber missed because it read too slowly.
    pub fn levels_lost(&self) -> u64 {
        lock(&self.inbox.pending).levels_lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::{Levels, MixerLevels};
    use std::path::PathBuf;

    fn levels() -> Event {
        let silence = Levels {
            sample_peak_dbfs: -60.0,
            true_peak_dbfs: -60.0,
            rms_dbfs: -60.0,
            momentary_lufs: -60.0,
            short_term_lufs: -60.0,
        };
        Event::AudioLevels(MixerLevels {
            master: silence,
            sources: Vec::new(),
        })
    }

    fn stopped() -> Event {
        Event::RecordingStopped {
            path: PathBuf::from("show.mp4"),
            error: None,
        }
    }

    fn drain(subscription: &Subscription) -> Vec<Received> {
        std::iter::from_fn(|| subscription.try_next()).collect()
    }

    #[test]
    fn a_flood_of_meter_readings_never_hides_a_change_of_state_from_any_subscriber() {
        let hub = Hub::default();
        let reads_often = hub.subscribe();
        let never_reads = hub.subscribe();
        let mut seen_by_reader = Vec::new();
        for n in 0..100_000 {
            hub.publish(&levels());
            if n == 50_000 {
                hub.publish(&stopped());
            }
            if n % 1000 == 0 {
                seen_by_reader.extend(drain(&reads_often));
            }
        }
        seen_by_reader.extend(drain(&reads_often));
        let stops = |received: &[Received]| {
            received
                .iter()
                .filter(|r| matches!(r, Received::Event(Event::RecordingStopped { .. })))
                .count()
        };
        assert_eq!(stops(&seen_by_reader), 1);
        let late = drain(&never_reads);
        // One change and the newest meter reading, nothing else.
        assert_eq!(
            late,
            vec![Received::Event(stopped()), Received::Event(levels())]
        );
        assert_eq!(never_reads.levels_lost(), 99_999);
    }

    #[test]
    fn changes_keep_their_order_and_a_dead_reader_is_cut_off_not_grown() {
        let hub = Hub::default();
        let dead = hub.subscribe();
        let reader = hub.subscribe();
        let mut read = Vec::new();
        for n in 0..MAX_PENDING_CHANGES + 5 {
            hub.publish(&Event::SceneChanged {
                scene: n.to_string(),
            });
            read.extend(drain(&reader));
        }
        assert_eq!(dead.try_next(), Some(Received::Overrun));
        assert_eq!(dead.try_next(), Some(Received::Overrun));
        // The reader that kept up got every change, in order.
        let expected: Vec<Received> = (0..MAX_PENDING_CHANGES + 5)
            .map(|n| {
                Received::Event(Event::SceneChanged {
                    scene: n.to_string(),
                })
            })
            .collect();
        assert_eq!(read, expected);
    }

    #[test]
    fn a_dropped_subscription_unsubscribes_and_a_waiting_one_wakes() {
        let hub = Arc::new(Hub::default());
        let kept = hub.subscribe();
        drop(hub.subscribe());
        hub.publish(&stopped());
        assert_eq!(hub.subscribers(), 1);
        let publisher = {
            let hub = hub.clone();
            std::thread::spawn(move || {
                hub.publish(&Event::SceneChanged { scene: "B".into() });
            })
        };
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        assert_eq!(kept.next_before(deadline), Some(Received::Event(stopped())));
        assert_eq!(
            kept.next_before(deadline),
            Some(Received::Event(Event::SceneChanged { scene: "B".into() }))
        );
        publisher.join().expect("the publisher thread finished");
        assert_eq!(kept.next_before(Instant::now()), None);
    }
}
