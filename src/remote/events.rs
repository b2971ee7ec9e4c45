//! The show's events in obs-websocket's words: each controller [`Event`] becomes the protocol
//! events a remote client expects (`CurrentProgramSceneChanged`, `RecordStateChanged`,
//! `InputMuteStateChanged`...), with the subscription bit a client must hold to receive it.
//! Kept apart from the connections so the translation is plain and tested on its own.

use super::protocol::{intent, uuid_for};
use super::requests::{db_to_mul, scene_entries, transition_name};
use crate::engine::{Event, TransitionKind};
use crate::output::OutputState;
use crate::scene::Edit;
use serde_json::{json, Value};

/// One protocol event: its type, the subscription bit it needs, and its data.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteEvent {
    pub kind: &'static str,
    pub intent: u32,
    pub data: Value,
}

impl RemoteEvent {
    fn new(kind: &'static str, intent: u32, data: Value) -> Self {
        Self { kind, intent, data }
    }

    /// `ExitStarted`: Tally is stopping remote control (the show ends, or Settings turned it
    /// off).
    pub fn exit_started() -> Self {
        Self::new("ExitStarted", intent::GENERAL, json!({}))
    }

    /// The `Event` (op 5) message.
    pub fn message(&self) -> Value {
        json!({
            "op": super::protocol::op::EVENT,
            "d": {"eventType": self.kind, "eventIntent": self.intent, "eventData": self.data},
        })
    }
}

/// Translates the controller's events, keeping what it must remember between them (whether
/// studio mode is on, a stream's last state).
#[derive(Debug, Default)]
pub struct Translator {
    studio_mode: Option<bool>,
    streaming: bool,
}

impl Translator {
    pub fn translate(&mut self, event: &Event) -> Vec<RemoteEvent> {
        match event {
            Event::SceneChanged { scene } => vec![RemoteEvent::new(
                "CurrentProgramSceneChanged",
                intent::SCENES,
                json!({"sceneName": scene, "sceneUuid": uuid_for("scene", scene)}),
            )],
            Event::PreviewChanged { scene } => {
                let mut events = Vec::new();
                let studio = scene.is_some();
                if self.studio_mode != Some(studio) {
                    self.studio_mode = Some(studio);
                    events.push(RemoteEvent::new(
                        "StudioModeStateChanged",
                        intent::UI,
                        json!({"studioModeEnabled": studio}),
                    ));
                }
                if let Some(scene) = scene {
                    events.push(RemoteEvent::new(
                        "CurrentPreviewSceneChanged",
                        intent::SCENES,
                        json!({"sceneName": scene, "sceneUuid": uuid_for("scene", scene)}),
                    ));
                }
                events
            }
            Event::RecordingStarted { path } => vec![record_state(true, "STARTED", Some(path))],
            Event::RecordingStopped { path, .. } => {
                vec![record_state(false, "STOPPED", Some(path))]
            }
            Event::Output(notice) => {
                let (active, state) = match &notice.state {
                    OutputState::Connecting => (true, "STARTING"),
                    OutputState::Live => (true, "STARTED"),
                    OutputState::Reconnecting { .. } => (true, "RECONNECTING"),
                    OutputState::Stopped | OutputState::Failed(_) => (false, "STOPPED"),
                };
                let was = std::mem::replace(&mut self.streaming, active);
                // After a reconnect OBS says RECONNECTED, then the stream is live again.
                let state = if state == "STARTED" && was {
                    "RECONNECTED"
                } else {
                    state
                };
                vec![stream_state(active, state, &notice.output)]
            }
            Event::StreamingStopped { .. } => {
                self.streaming = false;
                vec![stream_state(false, "STOPPED", "")]
            }
            Event::Edited(edit) => edited(edit).into_iter().collect(),
            Event::CueFired { cue, name, frame } => vec![RemoteEvent::new(
                "VendorEvent",
                intent::VENDORS,
                json!({
                    "vendorName": "tally",
                    "eventType": "CueFired",
                    "eventData": {"cue": cue, "cueName": name, "frame": frame},
                }),
            )],
            // Every 50 ms, as the spec says. Both
            // channels carry the strip's reading: the meters measure the stereo pair as one.
            Event::AudioLevels(levels) => {
                let mul = |dbfs: f32| db_to_mul(dbfs.max(-100.0));
                let inputs: Vec<Value> = levels
                    .sources
                    .iter()
                    .map(|(source, reading)| {
                        let channel = [
                            mul(reading.rms_dbfs),
                            mul(reading.sample_peak_dbfs),
                            mul(reading.sample_peak_dbfs),
                        ];
                        json!({
                            "inputName": source, "inputUuid": uuid_for("input", source),
                            "inputLevelsMul": [channel, channel],
                        })
                    })
                    .collect();
                vec![RemoteEvent::new(
                    "InputVolumeMeters",
                    intent::INPUT_VOLUME_METERS,
                    json!({"inputs": inputs}),
                )]
            }
            Event::TransitionStarted { transition, .. } => {
                vec![transition_event("SceneTransitionStarted", transition.kind)]
            }
            // Tally's picture and program change together, so the video ends with it.
            Event::TransitionEnded { transition, .. } => vec![
                transition_event("SceneTransitionEnded", transition.kind),
                transition_event("SceneTransitionVideoEnded", transition.kind),
            ],
            Event::MediaEnded { source } => vec![RemoteEvent::new(
                "MediaInputPlaybackEnded",
                intent::MEDIA_INPUTS,
                json!({"inputName": source, "inputUuid": uuid_for("input", source)}),
            )],
            Event::ScenesChanged { scenes } => vec![RemoteEvent::new(
                "SceneListChanged",
                intent::SCENES,
                json!({"scenes": scene_entries(scenes)}),
            )],
            Event::Warning(_) => Vec::new(),
        }
    }
}

fn transition_event(kind: &'static str, transition: TransitionKind) -> RemoteEvent {
    let name = transition_name(transition);
    RemoteEvent::new(
        kind,
        intent::TRANSITIONS,
        json!({"transitionName": name, "transitionUuid": uuid_for("transition", name)}),
    )
}

fn record_state(active: bool, state: &str, path: Option<&std::path::Path>) -> RemoteEvent {
    RemoteEvent::new(
        "RecordStateChanged",
        intent::OUTPUTS,
        json!({
            "outputActive": active,
            "outputState": format!("OBS_WEBSOCKET_OUTPUT_{state}"),
            "outputPath": path.map(|path| path.display().to_string()),
        }),
    )
}

fn stream_state(active: bool, state: &str, output: &str) -> RemoteEvent {
    RemoteEvent::new(
        "StreamStateChanged",
        intent::OUTPUTS,
        json!({
            "outputActive": active,
            "outputState": format!("OBS_WEBSOCKET_OUTPUT_{state}"),
            // Which of Tally's streams (OBS has one); keys masked.
            "outputName": output,
        }),
    )
}

/// The protocol event for a change of the collection, if clients follow it.
fn edited(edit: &Edit) -> Option<RemoteEvent> {
    let input = |source: &str| (source.to_string(), uuid_for("input", source));
    Some(match edit {
        Edit::SetMute { source, muted } => {
            let (name, uuid) = input(source);
            RemoteEvent::new(
                "InputMuteStateChanged",
                intent::INPUTS,
                json!({"inputName": name, "inputUuid": uuid, "inputMuted": muted}),
            )
        }
        Edit::SetVolume { source, db } => {
            let (name, uuid) = input(source);
            RemoteEvent::new(
                "InputVolumeChanged",
                intent::INPUTS,
                json!({
                    "inputName": name, "inputUuid": uuid,
                    "inputVolumeDb": db, "inputVolumeMul": db_to_mul(*db),
                }),
            )
        }
        Edit::SetItemVisible {
            scene,
            index,
            visible,
        } => RemoteEvent::new(
            "SceneItemEnableStateChanged",
            intent::SCENE_ITEMS,
            json!({
                "sceneName": scene, "sceneUuid": uuid_for("scene", scene),
                "sceneItemId": index + 1, "sceneItemEnabled": visible,
            }),
        ),
        Edit::SetItemPosition {
            scene,
            index,
            position,
        } => RemoteEvent::new(
            "SceneItemTransformChanged",
            intent::SCENE_ITEM_TRANSFORM_CHANGED,
            json!({
                "sceneName": scene, "sceneUuid": uuid_for("scene", scene),
                "sceneItemId": index + 1,
                "sceneItemTransform": {"positionX": position[0], "positionY": position[1]},
            }),
        ),
        Edit::SetText { source, text } => {
            let (name, uuid) = input(source);
            RemoteEvent::new(
                "InputSettingsChanged",
                intent::INPUTS,
                json!({"inputName": name, "inputUuid": uuid, "inputSettings": {"text": text}}),
            )
        }
        Edit::SetSourceVisible { .. } | Edit::SetMediaFile { .. } | Edit::RenameSource { .. } => {
            return None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn studio_mode_is_announced_once_and_previews_each_time() {
        let mut translator = Translator::default();
        let on = translator.translate(&Event::PreviewChanged {
            scene: Some("Main".into()),
        });
        let kinds: Vec<&str> = on.iter().map(|event| event.kind).collect();
        assert_eq!(
            kinds,
            ["StudioModeStateChanged", "CurrentPreviewSceneChanged"]
        );
        let again = translator.translate(&Event::PreviewChanged {
            scene: Some("Bars".into()),
        });
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].data["sceneName"], "Bars");
        let off = translator.translate(&Event::PreviewChanged { scene: None });
        assert_eq!(off[0].data, json!({"studioModeEnabled": false}));
    }

    #[test]
    fn edits_become_input_and_item_events() {
        let mut translator = Translator::default();
        let muted = translator.translate(&Event::Edited(Edit::SetMute {
            source: "mic".into(),
            muted: true,
        }));
        assert_eq!(muted[0].kind, "InputMuteStateChanged");
        assert_eq!(muted[0].intent, intent::INPUTS);
        assert_eq!(muted[0].data["inputMuted"], true);
        let volume = translator.translate(&Event::Edited(Edit::SetVolume {
            source: "mic".into(),
            db: -6.0,
        }));
        let mul = volume[0].data["inputVolumeMul"].as_f64().unwrap();
        assert!((mul - 0.501).abs() < 0.001, "{mul}");
        let hidden = translator.translate(&Event::Edited(Edit::SetItemVisible {
            scene: "Main".into(),
            index: 0,
            visible: false,
        }));
        assert_eq!(hidden[0].data["sceneItemId"], 1);
    }
}
