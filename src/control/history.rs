//! Undo and redo for the show's edits: whole snapshots (the scene collection, and a show's
//! cues), before each edit. A collection is small (tens of sources), so snapshots are simpler
//! and safer than inverse operations, and every kind of edit is undoable without writing its
//! inverse.

use crate::scene::Collection;

/// At most this many steps are kept.
const LIMIT: usize = 200;

#[derive(Debug)]
pub struct History<T = Collection> {
    undo: Vec<T>,
    redo: Vec<T>,
}

impl<T> Default for History<T> {
    fn default() -> Self {
        Self {
            undo: Vec::new(),
            redo: Vec::new(),
        }
    }
}

impl<T: Clone + PartialEq> History<T> {
    /// Call before changing `current`: the state to return to.
    pub fn record(&mut self, current: &T) {
        if self.undo.last() == Some(current) {
            return;
        }
        self.undo.push(current.clone());
        if self.undo.len() > LIMIT {
            self.undo.remove(0);
        }
        self.redo.clear();
    }

    /// The state before the last edit, if any; `current` becomes redoable.
    pub fn undo(&mut self, current: &T) -> Option<T> {
        let previous = self.undo.pop()?;
        self.redo.push(current.clone());
        Some(previous)
    }

    pub fn redo(&mut self, current: &T) -> Option<T> {
        let next = self.redo.pop()?;
        self.undo.push(current.clone());
        Some(next)
    }

    pub fn can_undo(&self) -> bool {
        !self.undo.is_empty()
    }

    pub fn can_redo(&self) -> bool {
        !self.redo.is_empty()
    }

    pub fn clear(&mut self) {
        self.undo.clear();
        self.redo.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::FrameRate;
    use crate::scene::Canvas;

    fn named(scene: &str) -> Collection {
        Collection {
            base_dir: ".".into(),
            canvas: Canvas {
                width: 2,
                height: 2,
                fps: FrameRate::new(30, 1),
            },
            current_scene: scene.into(),
            sources: Vec::new(),
            scenes: Vec::new(),
        }
    }

    #[test]
    fn undo_and_redo_walk_the_edits_both_ways() {
        let mut history = History::default();
        let mut current = named("a");
        for next in ["b", "c"] {
            history.record(&current);
            current = named(next);
        }
        current = history.undo(&current).unwrap();
        assert_eq!(current.current_scene, "b");
        current = history.undo(&current).unwrap();
        assert_eq!(current.current_scene, "a");
        assert!(history.undo(&current).is_none());
        current = history.redo(&current).unwrap();
        assert_eq!(current.current_scene, "b");
        // A new edit drops what could have been redone.
        history.record(&current);
        assert!(!history.can_redo());
    }
}
