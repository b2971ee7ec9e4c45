//! The production switcher's state: which scene is on program, which is in preview (studio
//! mode), and the transition between them, timed or on the T-bar. Pure state over canvas time,
//! so it is tested without an engine; the render loop asks it what to draw each tick.

use super::transition::{progress, Transition};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct Switcher {
    program: String,
    /// `Some` in studio mode.
    preview: Option<String>,
    active: Option<Active>,
}

#[derive(Debug, Clone, PartialEq)]
struct Active {
    from: String,
    to: String,
    transition: Transition,
    position: Position,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Position {
    /// Runs by itself from this canvas time.
    Timed { started: Duration },
    /// Held where the T-bar is.
    Manual(f32),
}

/// What to draw now.
#[derive(Debug, Clone, PartialEq)]
pub enum OnAir<'a> {
    Scene(&'a str),
    Transition {
        from: &'a str,
        to: &'a str,
        transition: Transition,
        progress: f32,
    },
}

/// A change the render loop reports as an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Program(String),
    Preview(Option<String>),
    /// A transition from the program scene towards `to` began (a cut begins and ends at once,
    /// as in OBS, so a control surface sees every change of program the same way).
    TransitionStarted {
        to: String,
        transition: Transition,
    },
    /// The transition to `to` is over: `to` is on program, or the transition was abandoned
    /// (its scene removed).
    TransitionEnded {
        to: String,
        transition: Transition,
    },
}

impl Switcher {
    pub fn new(program: &str) -> Self {
        Self {
            program: program.to_string(),
            preview: None,
            active: None,
        }
    }

    pub fn program(&self) -> &str {
        &self.program
    }

    pub fn preview(&self) -> Option<&str> {
        self.preview.as_deref()
    }

    pub fn in_transition(&self) -> bool {
        self.active.is_some()
    }

    /// Studio mode on (with `scene` in preview) or off (`None`).
    pub fn set_preview(&mut self, scene: Option<&str>) -> Vec<Change> {
        let scene = scene.map(str::to_string);
        if self.preview == scene {
            return Vec::new();
        }
        self.preview = scene.clone();
        vec![Change::Preview(scene)]
    }

    /// Puts `to` on program with `transition`, starting at canvas time `now`. A transition
    /// already running finishes first (its target goes on program at once).
    pub fn transition_to(
        &mut self,
        to: &str,
        transition: Transition,
        now: Duration,
    ) -> Vec<Change> {
        let mut changes = self.finish();
        if to == self.program {
            return changes;
        }
        changes.push(Change::TransitionStarted {
            to: to.to_string(),
            transition,
        });
        if transition.duration.is_zero() {
            changes.extend(self.complete(to, transition));
            return changes;
        }
        self.active = Some(Active {
            from: self.program.clone(),
            to: to.to_string(),
            transition,
            position: Position::Timed { started: now },
        });
        changes
    }

    /// Studio mode's Transition button: the preview scene goes to program.
    pub fn take(&mut self, transition: Transition, now: Duration) -> Vec<Change> {
        match self.preview.clone() {
            Some(preview) => self.transition_to(&preview, transition, now),
            None => Vec::new(),
        }
    }

    /// The T-bar at `position` (0..1) takes preview towards program with `transition`'s look;
    /// reaching 1 completes the transition.
    pub fn set_tbar(&mut self, position: f32, transition: Transition) -> Vec<Change> {
        let position = position.clamp(0.0, 1.0);
        let mut changes = Vec::new();
        if self.active.is_none() {
            let Some(preview) = self.preview.clone().filter(|p| *p != self.program) else {
                return Vec::new();
            };
            if position <= 0.0 {
                return Vec::new();
            }
            changes.push(Change::TransitionStarted {
                to: preview.clone(),
                transition,
            });
            self.active = Some(Active {
                from: self.program.clone(),
                to: preview,
                transition,
                position: Position::Manual(position),
            });
        }
        if let Some(active) = &mut self.active {
            active.position = Position::Manual(position);
            if position >= 1.0 {
                changes.extend(self.finish());
            }
        }
        changes
    }

    /// Advances timed transitions to canvas time `now`; returns what changed.
    pub fn tick(&mut self, now: Duration) -> Vec<Change> {
        let done = match &self.active {
            Some(Active {
                transition,
                position: Position::Timed { started },
                ..
            }) => progress(transition, now.saturating_sub(*started)) >= 1.0,
            _ => false,
        };
        if done {
            self.finish()
        } else {
            Vec::new()
        }
    }

    /// What is on program at canvas time `now`.
    pub fn on_air(&self, now: Duration) -> OnAir<'_> {
        match &self.active {
            None => OnAir::Scene(&self.program),
            Some(active) => OnAir::Transition {
                from: &active.from,
                to: &active.to,
                transition: active.transition,
                progress: match active.position {
                    Position::Timed { started } => {
                        progress(&active.transition, now.saturating_sub(started))
                    }
                    Position::Manual(position) => position,
                },
            },
        }
    }

    /// A scene was renamed or removed by an edit: keep names pointing at real scenes.
    pub fn retarget(&mut self, exists: impl Fn(&str) -> bool, fallback: &str) -> Vec<Change> {
        let mut changes = Vec::new();
        if self
            .active
            .as_ref()
            .is_some_and(|a| !exists(&a.to) || !exists(&a.from))
        {
            if let Some(abandoned) = self.active.take() {
                changes.push(Change::TransitionEnded {
                    to: abandoned.to,
                    transition: abandoned.transition,
                });
            }
        }
        if !exists(&self.program) {
            self.program = fallback.to_string();
            changes.push(Change::Program(self.program.clone()));
        }
        if self.preview.as_deref().is_some_and(|p| !exists(p)) {
            self.preview = Some(fallback.to_string());
            changes.push(Change::Preview(self.preview.clone()));
        }
        changes
    }

    fn finish(&mut self) -> Vec<Change> {
        match self.active.take() {
            Some(active) => self.complete(&active.to, active.transition),
            None => Vec::new(),
        }
    }

    /// `to` is now on program; in studio mode the old program scene moves to preview, as on a
    /// vision mixer, so the next Transition takes it back.
    fn complete(&mut self, to: &str, transition: Transition) -> Vec<Change> {
        let old = std::mem::replace(&mut self.program, to.to_string());
        let mut changes = vec![Change::Program(to.to_string())];
        if self.preview.is_some() {
            self.preview = Some(old);
            changes.push(Change::Preview(self.preview.clone()));
        }
        changes.push(Change::TransitionEnded {
            to: to.to_string(),
            transition,
        });
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::transition::TransitionKind;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn a_timed_transition_runs_its_course_then_swaps_preview_and_program() {
        let mut switcher = Switcher::new("A");
        switcher.set_preview(Some("B"));
        let fade = Transition::fade(Duration::from_millis(500));
        assert_eq!(
            switcher.take(fade, SECOND),
            vec![Change::TransitionStarted {
                to: "B".into(),
                transition: fade
            }]
        );
        match switcher.on_air(SECOND + Duration::from_millis(250)) {
            OnAir::Transition {
                from, to, progress, ..
            } => {
                assert_eq!((from, to), ("A", "B"));
                assert!((progress - 0.5).abs() < 1e-6);
            }
            other => panic!("{other:?}"),
        }
        assert!(switcher
            .tick(SECOND + Duration::from_millis(400))
            .is_empty());
        let changes = switcher.tick(SECOND + Duration::from_millis(500));
        assert_eq!(
            changes,
            vec![
                Change::Program("B".into()),
                Change::Preview(Some("A".into())),
                Change::TransitionEnded {
                    to: "B".into(),
                    transition: fade
                },
            ]
        );
        assert_eq!(switcher.on_air(SECOND * 2), OnAir::Scene("B"));
    }

    #[test]
    fn a_cut_is_immediate_and_outside_studio_mode_preview_stays_off() {
        let mut switcher = Switcher::new("A");
        let changes = switcher.transition_to("B", Transition::CUT, SECOND);
        let cut = Transition::CUT;
        assert_eq!(
            changes,
            vec![
                Change::TransitionStarted {
                    to: "B".into(),
                    transition: cut
                },
                Change::Program("B".into()),
                Change::TransitionEnded {
                    to: "B".into(),
                    transition: cut
                },
            ]
        );
        assert_eq!(switcher.preview(), None);
        assert!(
            switcher.take(Transition::CUT, SECOND).is_empty(),
            "nothing to take"
        );
    }

    #[test]
    fn the_tbar_holds_the_transition_where_it_is_and_completes_at_the_end() {
        let mut switcher = Switcher::new("A");
        switcher.set_preview(Some("B"));
        let wipe = Transition {
            kind: TransitionKind::Fade,
            duration: SECOND,
        };
        assert_eq!(
            switcher.set_tbar(0.3, wipe),
            vec![Change::TransitionStarted {
                to: "B".into(),
                transition: wipe
            }]
        );
        // Time does not move a manual transition.
        switcher.tick(SECOND * 100);
        assert!(matches!(
            switcher.on_air(SECOND * 100),
            OnAir::Transition { progress, .. } if (progress - 0.3).abs() < 1e-6
        ));
        assert!(switcher.set_tbar(0.8, wipe).is_empty());
        let changes = switcher.set_tbar(1.0, wipe);
        assert_eq!(changes[0], Change::Program("B".into()));
        assert!(matches!(changes.last(), Some(Change::TransitionEnded { to, .. }) if to == "B"));
        assert_eq!(switcher.program(), "B");
        assert!(!switcher.in_transition());
    }

    #[test]
    fn a_new_transition_finishes_the_running_one_first() {
        let mut switcher = Switcher::new("A");
        let fade = Transition::fade(SECOND);
        switcher.transition_to("B", fade, Duration::ZERO);
        let changes = switcher.transition_to("C", fade, Duration::from_millis(100));
        let ended_then_started = [
            Change::Program("B".into()),
            Change::TransitionEnded {
                to: "B".into(),
                transition: fade,
            },
            Change::TransitionStarted {
                to: "C".into(),
                transition: fade,
            },
        ];
        assert_eq!(changes, ended_then_started);
        assert!(matches!(
            switcher.on_air(Duration::from_millis(100)),
            OnAir::Transition {
                from: "B",
                to: "C",
                ..
            }
        ));
    }

    #[test]
    fn removed_scenes_fall_back() {
        let mut switcher = Switcher::new("A");
        switcher.set_preview(Some("B"));
        let changes = switcher.retarget(|name| name == "A", "A");
        assert_eq!(changes, vec![Change::Preview(Some("A".into()))]);
        // A transition to a removed scene is abandoned, and said to be over.
        let mut switcher = Switcher::new("A");
        switcher.set_preview(Some("B"));
        switcher.set_tbar(0.5, Transition::fade(SECOND));
        let changes = switcher.retarget(|name| name == "A", "A");
        assert!(
            matches!(&changes[0], Change::TransitionEnded { to, .. } if to == "B"),
            "{changes:?}"
        );
        assert!(!switcher.in_transition());
    }
}
