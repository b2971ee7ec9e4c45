//! Scene transitions: how the outgoing and incoming scenes are drawn at a point of a
//! transition. Pure geometry and timing, no GPU: the render loop turns a [`Blend`] into layers
//! (opacity factors, offsets and clip rectangles on the items of both scenes, plus an optional
//! colour wash) and the compositor draws them in one pass.

use crate::scene::Color;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TransitionKind {
    Cut,
    /// The incoming scene fades in over the outgoing one.
    Fade,
    /// Out to a colour, then in from it.
    FadeToColor(Color),
    /// The incoming scene pushes the outgoing one out, in `direction`.
    Slide(Direction),
    /// A hard edge sweeps across in `direction`, uncovering the incoming scene.
    Wipe(Direction),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Left,
    Right,
    Up,
    Down,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transition {
    pub kind: TransitionKind,
    pub duration: Duration,
}

impl Transition {
    pub const CUT: Transition = Transition {
        kind: TransitionKind::Cut,
        duration: Duration::ZERO,
    };

    pub fn fade(duration: Duration) -> Self {
        Self {
            kind: TransitionKind::Fade,
            duration,
        }
    }
}

/// How one scene's items are changed while it takes part in a transition.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SceneLook {
    /// Multiplies every item's opacity.
    pub opacity: f32,
    /// Added to every item's position, in canvas pixels.
    pub offset: [f32; 2],
    /// Only this canvas rectangle `[x0, y0, x1, y1]` of the scene is drawn.
    pub clip: Option<[f32; 4]>,
}

impl SceneLook {
    pub const NORMAL: SceneLook = SceneLook {
        opacity: 1.0,
        offset: [0.0, 0.0],
        clip: None,
    };

    pub fn is_hidden(&self) -> bool {
        self.opacity <= 0.0
            || self
                .clip
                .is_some_and(|[x0, y0, x1, y1]| x1 <= x0 || y1 <= y0)
    }
}

/// What to draw at one point of a transition, bottom first: the outgoing scene, the incoming
/// scene, then a colour over everything.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Blend {
    pub outgoing: SceneLook,
    pub incoming: SceneLook,
    pub wash: Option<(Color, f32)>,
}

/// The blend at `progress` (0 = all outgoing, 1 = all incoming) on a canvas of `size`.
pub fn blend(kind: TransitionKind, progress: f32, size: [f32; 2]) -> Blend {
    let t = progress.clamp(0.0, 1.0);
    let hidden = SceneLook {
        opacity: 0.0,
        ..SceneLook::NORMAL
    };
    let [width, height] = size;
    match kind {
        TransitionKind::Cut => Blend {
            outgoing: if t < 1.0 { SceneLook::NORMAL } else { hidden },
            incoming: if t < 1.0 { hidden } else { SceneLook::NORMAL },
            wash: None,
        },
        TransitionKind::Fade => Blend {
            outgoing: SceneLook::NORMAL,
            incoming: SceneLook {
                opacity: t,
                ..SceneLook::NORMAL
            },
            wash: None,
        },
        TransitionKind::FadeToColor(color) => {
            let first_half = t < 0.5;
            Blend {
                outgoing: if first_half {
                    SceneLook::NORMAL
                } else {
                    hidden
                },
                incoming: if first_half {
                    hidden
                } else {
                    SceneLook::NORMAL
                },
                wash: Some((color, 1.0 - (2.0 * t - 1.0).abs())),
            }
        }
        TransitionKind::Slide(direction) => {
            // The unit vector the pictures move along.
            let unit = match direction {
                Direction::Left => [-width, 0.0],
                Direction::Right => [width, 0.0],
                Direction::Up => [0.0, -height],
                Direction::Down => [0.0, height],
            };
            Blend {
                outgoing: SceneLook {
                    offset: [unit[0] * t, unit[1] * t],
                    ..SceneLook::NORMAL
                },
                incoming: SceneLook {
                    offset: [unit[0] * (t - 1.0), unit[1] * (t - 1.0)],
                    ..SceneLook::NORMAL
                },
                wash: None,
            }
        }
        TransitionKind::Wipe(direction) => {
            // The part of the canvas already uncovered, growing from the edge opposite the
            // direction of travel.
            let clip = match direction {
                Direction::Right => [0.0, 0.0, width * t, height],
                Direction::Left => [width * (1.0 - t), 0.0, width, height],
                Direction::Down => [0.0, 0.0, width, height * t],
                Direction::Up => [0.0, height * (1.0 - t), width, height],
            };
            Blend {
                outgoing: SceneLook::NORMAL,
                incoming: SceneLook {
                    clip: Some(clip),
                    ..SceneLook::NORMAL
                },
                wash: None,
            }
        }
    }
}

/// Progress of a timed transition that started `elapsed` ago.
pub fn progress(transition: &Transition, elapsed: Duration) -> f32 {
    if transition.duration.is_zero() {
        return 1.0;
    }
    (elapsed.as_secs_f32() / transition.duration.as_secs_f32()).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIZE: [f32; 2] = [1280.0, 720.0];

    #[test]
    fn every_transition_starts_on_the_outgoing_scene_and_ends_on_the_incoming() {
        let kinds = [
            TransitionKind::Cut,
            TransitionKind::Fade,
            TransitionKind::FadeToColor(Color::BLACK),
            TransitionKind::Slide(Direction::Left),
            TransitionKind::Wipe(Direction::Right),
            TransitionKind::Wipe(Direction::Up),
        ];
        for kind in kinds {
            let start = blend(kind, 0.0, SIZE);
            assert!(!start.outgoing.is_hidden(), "{kind:?}");
            assert!(
                start.incoming.is_hidden() || start.incoming.offset[0].abs() >= SIZE[0],
                "{kind:?} shows the incoming scene at the start"
            );
            assert!(start.wash.is_none_or(|(_, alpha)| alpha == 0.0), "{kind:?}");
            let end = blend(kind, 1.0, SIZE);
            assert_eq!(end.incoming.opacity, 1.0, "{kind:?}");
            assert_eq!(end.incoming.offset, [0.0, 0.0], "{kind:?}");
            assert!(
                end.incoming
                    .clip
                    .is_none_or(|clip| clip == [0.0, 0.0, SIZE[0], SIZE[1]]),
                "{kind:?}"
            );
            assert!(end.wash.is_none_or(|(_, alpha)| alpha == 0.0), "{kind:?}");
        }
    }

    #[test]
    fn fade_to_colour_is_all_colour_half_way() {
        let middle = blend(TransitionKind::FadeToColor(Color::BLACK), 0.5, SIZE);
        assert_eq!(middle.wash, Some((Color::BLACK, 1.0)));
        let quarter = blend(TransitionKind::FadeToColor(Color::BLACK), 0.25, SIZE);
        assert_eq!(quarter.wash, Some((Color::BLACK, 0.5)));
        assert!(!quarter.outgoing.is_hidden() && quarter.incoming.is_hidden());
    }

    #[test]
    fn slide_and_wipe_move_in_their_direction() {
        let slide = blend(TransitionKind::Slide(Direction::Left), 0.25, SIZE);
        assert_eq!(slide.outgoing.offset, [-320.0, 0.0]);
        assert_eq!(slide.incoming.offset, [960.0, 0.0]);
        let wipe = blend(TransitionKind::Wipe(Direction::Down), 0.5, SIZE);
        assert_eq!(wipe.incoming.clip, Some([0.0, 0.0, 1280.0, 360.0]));
    }

    #[test]
    fn timed_progress_runs_from_zero_to_one() {
        let fade = Transition::fade(Duration::from_millis(300));
        assert_eq!(progress(&fade, Duration::ZERO), 0.0);
        assert!((progress(&fade, Duration::from_millis(150)) - 0.5).abs() < 1e-6);
        assert_eq!(progress(&fade, Duration::from_secs(1)), 1.0);
        assert_eq!(progress(&Transition::CUT, Duration::ZERO), 1.0);
    }
}
