//! Edits of a show's cue list by an operator (add, delete, move, change a trigger), checked
//! and applied to the list, with the cue that fires next kept the same wherever it moves.
//! Pure: the controller keeps the list, records each edit for undo and hands the new list to
//! the running show.

use crate::show::{Cue, Trigger};

/// One edit of the cue list.
#[derive(Debug, Clone, PartialEq)]
pub enum CueEdit {
    /// `cue` goes in at position `at` (0 is the top; the length adds it at the end).
    Add {
        at: usize,
        cue: Cue,
    },
    Remove(usize),
    /// The cue at `from` moves to position `to` of the list without it.
    Move {
        from: usize,
        to: usize,
    },
    SetTrigger {
        cue: usize,
        trigger: Trigger,
    },
}

/// Why a cue edit was refused; the list is then unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CueEditError {
    #[error("the show has {cues} cue(s); there is no cue {}", .index + 1)]
    NoSuchCue { index: usize, cues: usize },
    #[error("a cue is already named `{0}`")]
    NameTaken(String),
}

/// Applies `edit` to `cues`; `next` (the cue that fires next, or the length once all have
/// fired) follows it. A cue added at the next cue's place becomes the next cue.
pub fn apply(cues: &mut Vec<Cue>, next: &mut usize, edit: CueEdit) -> Result<(), CueEditError> {
    let exists = |index: usize, cues: &Vec<Cue>| {
        if index < cues.len() {
            Ok(())
        } else {
            Err(CueEditError::NoSuchCue {
                index,
                cues: cues.len(),
            })
        }
    };
    match edit {
        CueEdit::Add { at, cue } => {
            if at > cues.len() {
                return Err(CueEditError::NoSuchCue {
                    index: at,
                    cues: cues.len(),
                });
            }
            if cues.iter().any(|other| other.name == cue.name) {
                return Err(CueEditError::NameTaken(cue.name));
            }
            cues.insert(at, cue);
            if at < *next {
                *next += 1;
            }
        }
        CueEdit::Remove(index) => {
            exists(index, cues)?;
            cues.remove(index);
            if index < *next {
                *next -= 1;
            }
        }
        CueEdit::Move { from, to } => {
            exists(from, cues)?;
            exists(to, cues)?;
            let cue = cues.remove(from);
            cues.insert(to, cue);
            if from == *next {
                *next = to;
            } else {
                let without = *next - usize::from(from < *next);
                *next = without + usize::from(to <= without);
            }
        }
        CueEdit::SetTrigger { cue, trigger } => {
            exists(cue, cues)?;
            cues[cue].trigger = trigger;
        }
    }
    Ok(())
}

/// A name no cue of `cues` has: `Cue N`, N the first free number from the list's length + 1.
pub fn unused_name(cues: &[Cue]) -> String {
    (cues.len() + 1..)
        .map(|number| format!("Cue {number}"))
        .find(|name| cues.iter().all(|cue| cue.name != *name))
        .expect("some number is free")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cues(names: &[&str]) -> Vec<Cue> {
        names
            .iter()
            .map(|name| Cue {
                name: name.to_string(),
                trigger: Trigger::Go,
                actions: Vec::new(),
            })
            .collect()
    }

    fn names(cues: &[Cue]) -> Vec<&str> {
        cues.iter().map(|cue| cue.name.as_str()).collect()
    }

    #[test]
    fn the_next_cue_stays_the_same_cue_through_edits() {
        let mut list = cues(&["a", "b", "c", "d"]);
        let mut next = 2; // c
        apply(&mut list, &mut next, CueEdit::Remove(0)).unwrap();
        assert_eq!((names(&list), next), (vec!["b", "c", "d"], 1));
        apply(&mut list, &mut next, CueEdit::Move { from: 2, to: 0 }).unwrap();
        assert_eq!((names(&list), next), (vec!["d", "b", "c"], 2));
        apply(&mut list, &mut next, CueEdit::Move { from: 2, to: 0 }).unwrap();
        assert_eq!((names(&list), next), (vec!["c", "d", "b"], 0));
        let new = cues(&["e"]).remove(0);
        apply(&mut list, &mut next, CueEdit::Add { at: 0, cue: new }).unwrap();
        // Added at the next cue's place: the new cue is next.
        assert_eq!((names(&list), next), (vec!["e", "c", "d", "b"], 0));
        apply(&mut list, &mut next, CueEdit::Remove(0)).unwrap();
        assert_eq!((names(&list), next), (vec!["c", "d", "b"], 0));
        apply(
            &mut list,
            &mut next,
            CueEdit::SetTrigger {
                cue: 1,
                trigger: Trigger::After(std::time::Duration::from_secs(2)),
            },
        )
        .unwrap();
        assert_eq!(
            list[1].trigger,
            Trigger::After(std::time::Duration::from_secs(2))
        );
    }

    #[test]
    fn a_refused_cue_edit_says_why_and_changes_nothing() {
        let mut list = cues(&["a", "b"]);
        let mut next = 1;
        assert_eq!(
            apply(&mut list, &mut next, CueEdit::Remove(2))
                .unwrap_err()
                .to_string(),
            "the show has 2 cue(s); there is no cue 3"
        );
        let taken = cues(&["a"]).remove(0);
        assert_eq!(
            apply(&mut list, &mut next, CueEdit::Add { at: 0, cue: taken })
                .unwrap_err()
                .to_string(),
            "a cue is already named `a`"
        );
        assert_eq!((names(&list), next), (vec!["a", "b"], 1));
        assert_eq!(unused_name(&list), "Cue 3");
    }
}
