//! obs-websocket requests carried out on the show controller: each is read from its fields
//! (with the spec's status for a field missing, of the wrong type or out of range), done
//! through the controller's requests and queries, and answered with the fields the spec lists.
//! Runs on the thread that owns the controller; the connections only carry messages.

use super::protocol::{uuid_for, Status, OBS_WEBSOCKET_VERSION, RPC_VERSION};
use crate::control::{Controller, Request, RequestError};
use crate::engine::{Direction, Transition, TransitionKind};
use crate::scene::{Collection, Color, Edit, EditError, Item};
use crate::sources::MediaControl;
use crate::sources::PlaybackState;
use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};

/// Every request Tally answers (GetVersion's `availableRequests`).
pub const REQUESTS: &[&str] = &[
    "GetVersion",
    "GetStats",
    "GetVideoSettings",
    "Sleep",
    "GetSceneList",
    "GetCurrentProgramScene",
    "SetCurrentProgramScene",
    "GetCurrentPreviewScene",
    "SetCurrentPreviewScene",
    "GetStudioModeEnabled",
    "SetStudioModeEnabled",
    "TriggerStudioModeTransition",
    "SetTBarPosition",
    "GetSceneTransitionList",
    "GetCurrentSceneTransition",
    "SetCurrentSceneTransition",
    "SetCurrentSceneTransitionDuration",
    "GetSceneItemList",
    "GetSceneItemId",
    "GetSceneItemEnabled",
    "SetSceneItemEnabled",
    "GetSceneItemLocked",
    "SetSceneItemLocked",
    "GetSceneItemTransform",
    "SetSceneItemTransform",
    "GetInputList",
    "GetInputKindList",
    "GetInputSettings",
    "SetInputSettings",
    "GetInputMute",
    "SetInputMute",
    "ToggleInputMute",
    "GetInputVolume",
    "SetInputVolume",
    "TriggerMediaInputAction",
    "GetMediaInputStatus",
    "GetStreamStatus",
    "StartStream",
    "StopStream",
    "ToggleStream",
    "GetRecordStatus",
    "StartRecord",
    "StopRecord",
    "ToggleRecord",
    "PauseRecord",
    "ResumeRecord",
    "GetOutputList",
    "GetSceneCollectionList",
    "SetCurrentSceneCollection",
    "CallVendorRequest",
];

/// Why a request failed: the spec's status, and a comment saying what to do.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub status: Status,
    pub comment: String,
}

impl Failure {
    pub fn new(status: Status, comment: impl Into<String>) -> Self {
        Self {
            status,
            comment: comment.into(),
        }
    }
}

impl From<RequestError> for Failure {
    fn from(error: RequestError) -> Self {
        let status = match &error {
            RequestError::Edit(
                EditError::UnknownSource { .. } | EditError::UnknownScene { .. },
            )
            | RequestError::Edit(EditError::NoSuchItem { .. }) => Status::ResourceNotFound,
            RequestError::Edit(EditError::WrongKind { .. }) => Status::InvalidResourceType,
            RequestError::Edit(EditError::VolumeOutOfRange { .. }) => {
                Status::RequestFieldOutOfRange
            }
            RequestError::Edit(EditError::NameTaken(_)) => Status::ResourceAlreadyExists,
            RequestError::Edit(EditError::NotAName(_)) => Status::InvalidRequestField,
            RequestError::NotRecording | RequestError::NotStreaming => Status::OutputNotRunning,
            RequestError::AlreadyRecording(_) => Status::OutputRunning,
            RequestError::NoPreview => Status::StudioModeNotActive,
            RequestError::NotRunning => Status::NotReady,
            RequestError::NoShow => Status::InvalidResourceState,
            RequestError::CueEdit(_) => Status::ResourceNotFound,
            _ => Status::RequestProcessingFailed,
        };
        Failure::new(status, error.to_string())
    }
}

type Answer = Result<Value, Failure>;

/// A request's fields, read with the spec's statuses.
struct Fields<'a>(&'a Map<String, Value>);

impl Fields<'_> {
    fn value(&self, name: &str) -> Result<&Value, Failure> {
        self.0.get(name).ok_or_else(|| {
            Failure::new(
                Status::MissingRequestField,
                format!("missing field `{name}`"),
            )
        })
    }

    fn string(&self, name: &str) -> Result<String, Failure> {
        match self.value(name)? {
            Value::String(text) => Ok(text.clone()),
            _ => Err(wrong_type(name, "a string")),
        }
    }

    fn optional_string(&self, name: &str) -> Result<Option<String>, Failure> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.string(name).map(Some),
        }
    }

    fn bool(&self, name: &str) -> Result<bool, Failure> {
        self.value(name)?
            .as_bool()
            .ok_or_else(|| wrong_type(name, "a boolean"))
    }

    fn number(&self, name: &str) -> Result<f64, Failure> {
        self.value(name)?
            .as_f64()
            .ok_or_else(|| wrong_type(name, "a number"))
    }

    fn optional_number(&self, name: &str) -> Result<Option<f64>, Failure> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.number(name).map(Some),
        }
    }

    fn number_in(&self, name: &str, low: f64, high: f64) -> Result<f64, Failure> {
        let number = self.number(name)?;
        if (low..=high).contains(&number) {
            Ok(number)
        } else {
            Err(Failure::new(
                Status::RequestFieldOutOfRange,
                format!("`{name}` is {number}; it must be from {low} to {high}"),
            ))
        }
    }
}

fn wrong_type(name: &str, wanted: &str) -> Failure {
    Failure::new(
        Status::InvalidRequestFieldType,
        format!("`{name}` must be {wanted}"),
    )
}

/// The volume multiplier for `db` (OBS's `mul`): 10^(dB/20), 0 at the fader's floor.
pub fn db_to_mul(db: f32) -> f64 {
    if db <= -100.0 {
        0.0
    } else {
        10f64.powf(f64::from(db) / 20.0)
    }
}

fn mul_to_db(mul: f64) -> f32 {
    if mul <= 0.0 {
        -100.0
    } else {
        (20.0 * mul.log10()).clamp(-100.0, 26.0) as f32
    }
}

/// The transitions offered by name, as OBS clients list them.
const TRANSITIONS: [(&str, TransitionKind); 11] = [
    ("Cut", TransitionKind::Cut),
    ("Fade", TransitionKind::Fade),
    ("Fade to black", TransitionKind::FadeToColor(Color::BLACK)),
    ("Slide left", TransitionKind::Slide(Direction::Left)),
    ("Slide right", TransitionKind::Slide(Direction::Right)),
    ("Slide up", TransitionKind::Slide(Direction::Up)),
    ("Slide down", TransitionKind::Slide(Direction::Down)),
    ("Wipe left", TransitionKind::Wipe(Direction::Left)),
    ("Wipe right", TransitionKind::Wipe(Direction::Right)),
    ("Wipe up", TransitionKind::Wipe(Direction::Up)),
    ("Wipe down", TransitionKind::Wipe(Direction::Down)),
];

pub(super) fn transition_name(kind: TransitionKind) -> &'static str {
    TRANSITIONS
        .iter()
        .find(|(_, named)| *named == kind)
        .map_or("Fade", |(name, _)| name)
}

/// What a connection knows that the controller does not: its own message counts.
#[derive(Debug, Clone, Copy, Default)]
pub struct SessionCounts {
    pub incoming: u64,
    pub outgoing: u64,
}

/// Carries out `request_type` with `data` on `controller`.
pub fn handle(
    controller: &mut Controller,
    request_type: &str,
    data: &Value,
    session: SessionCounts,
) -> Answer {
    let empty = Map::new();
    let fields = Fields(data.as_object().unwrap_or(&empty));
    let now = Instant::now();
    match request_type {
        "GetVersion" => Ok(json!({
            "obsVersion": format!("Tally {}", env!("CARGO_PKG_VERSION")),
            "obsWebSocketVersion": OBS_WEBSOCKET_VERSION,
            "rpcVersion": RPC_VERSION,
            "availableRequests": REQUESTS,
            "supportedImageFormats": Vec::<String>::new(),
            "platform": std::env::consts::OS,
            "platformDescription": format!("Tally on {} {}", std::env::consts::OS, std::env::consts::ARCH),
        })),
        "GetStats" => Ok(stats(controller, session)),
        "GetVideoSettings" => {
            let canvas = controller.collection().canvas;
            Ok(json!({
                "fpsNumerator": canvas.fps.num, "fpsDenominator": canvas.fps.den,
                "baseWidth": canvas.width, "baseHeight": canvas.height,
                "outputWidth": canvas.width, "outputHeight": canvas.height,
            }))
        }
        "GetSceneList" => Ok(scene_list(controller)),
        "GetCurrentProgramScene" => {
            let scene = controller.state().program;
            Ok(json!({
                "sceneName": scene, "sceneUuid": uuid_for("scene", &scene),
                "currentProgramSceneName": scene,
                "currentProgramSceneUuid": uuid_for("scene", &scene),
            }))
        }
        "SetCurrentProgramScene" => {
            let scene = scene_named(controller, &fields)?;
            // Outside studio mode OBS cuts with its current transition; so does Tally.
            let request = if controller.state().preview.is_some() {
                Request::SetProgramScene(scene)
            } else {
                Request::Transition {
                    to: scene,
                    transition: controller.transition(),
                }
            };
            done(controller.request(request))
        }
        "GetCurrentPreviewScene" => {
            let Some(scene) = controller.state().preview else {
                return Err(Failure::new(
                    Status::StudioModeNotActive,
                    "studio mode is off: there is no preview scene",
                ));
            };
            Ok(json!({
                "sceneName": scene, "sceneUuid": uuid_for("scene", &scene),
                "currentPreviewSceneName": scene,
                "currentPreviewSceneUuid": uuid_for("scene", &scene),
            }))
        }
        "SetCurrentPreviewScene" => {
            if controller.state().preview.is_none() {
                return Err(Failure::new(
                    Status::StudioModeNotActive,
                    "studio mode is off: turn it on (SetStudioModeEnabled) first",
                ));
            }
            let scene = scene_named(controller, &fields)?;
            done(controller.request(Request::SetPreviewScene(Some(scene))))
        }
        "GetStudioModeEnabled" => {
            Ok(json!({"studioModeEnabled": controller.state().preview.is_some()}))
        }
        "SetStudioModeEnabled" => {
            let on = fields.bool("studioModeEnabled")?;
            let state = controller.state();
            if on == state.preview.is_some() {
                return Ok(Value::Null);
            }
            done(controller.request(Request::SetPreviewScene(on.then_some(state.program))))
        }
        "TriggerStudioModeTransition" => {
            let transition = controller.transition();
            done(controller.request(Request::Take(transition)))
        }
        "SetTBarPosition" => {
            let position = fields.number_in("position", 0.0, 1.0)? as f32;
            let release = match fields.0.get("release") {
                None => true,
                Some(_) => fields.bool("release")?,
            };
            let transition = controller.transition();
            // A T-bar let go of before the end snaps back, as OBS's does.
            let position = if release && position < 1.0 {
                0.0
            } else {
                position
            };
            done(controller.request(Request::SetTBar {
                position,
                transition,
            }))
        }
        "GetSceneTransitionList" => {
            let current = controller.transition();
            let transitions: Vec<Value> = TRANSITIONS
                .iter()
                .map(|(name, kind)| {
                    json!({
                        "transitionName": name, "transitionUuid": uuid_for("transition", name),
                        "transitionKind": name.to_lowercase().replace(' ', "_"),
                        "transitionFixed": *kind == TransitionKind::Cut,
                        "transitionConfigurable": false,
                    })
                })
                .collect();
            let name = transition_name(current.kind);
            Ok(json!({
                "currentSceneTransitionName": name,
                "currentSceneTransitionUuid": uuid_for("transition", name),
                "currentSceneTransitionKind": name.to_lowercase().replace(' ', "_"),
                "transitions": transitions,
            }))
        }
        "GetCurrentSceneTransition" => {
            let current = controller.transition();
            let name = transition_name(current.kind);
            Ok(json!({
                "transitionName": name, "transitionUuid": uuid_for("transition", name),
                "transitionKind": name.to_lowercase().replace(' ', "_"),
                "transitionFixed": current.kind == TransitionKind::Cut,
                "transitionDuration": (current.kind != TransitionKind::Cut)
                    .then_some(current.duration.as_millis() as u64),
                "transitionConfigurable": false, "transitionSettings": null,
            }))
        }
        "SetCurrentSceneTransition" => {
            let name = fields.string("transitionName")?;
            let Some((_, kind)) = TRANSITIONS.iter().find(|(named, _)| *named == name) else {
                return Err(Failure::new(
                    Status::ResourceNotFound,
                    format!("no transition is named `{name}` (GetSceneTransitionList lists them)"),
                ));
            };
            let mut transition = controller.transition();
            if transition.kind == TransitionKind::Cut && *kind != TransitionKind::Cut {
                transition.duration = Duration::from_millis(300);
            }
            transition.kind = *kind;
            if *kind == TransitionKind::Cut {
                transition = Transition::CUT;
            }
            controller.set_transition(transition);
            Ok(Value::Null)
        }
        "SetCurrentSceneTransitionDuration" => {
            let millis = fields.number_in("transitionDuration", 50.0, 20_000.0)?;
            let mut transition = controller.transition();
            transition.duration = Duration::from_millis(millis as u64);
            controller.set_transition(transition);
            Ok(Value::Null)
        }
        "GetSceneItemList" => {
            let scene = scene_named(controller, &fields)?;
            let collection = controller.collection();
            let sizes = controller
                .stats()
                .map(|s| s.source_sizes)
                .unwrap_or_default();
            let items: Vec<Value> = collection
                .scene(&scene)
                .map(|scene| scene.items.as_slice())
                .unwrap_or_default()
                .iter()
                .enumerate()
                .map(|(index, item)| scene_item(collection, item, index, sizes.get(&item.source)))
                .collect();
            Ok(json!({"sceneItems": items}))
        }
        "GetSceneItemId" => {
            let scene = scene_named(controller, &fields)?;
            let source = fields.string("sourceName")?;
            let offset = fields.optional_number("searchOffset")?.unwrap_or(0.0);
            let items = &controller
                .collection()
                .scene(&scene)
                .map(|s| s.items.clone())
                .unwrap_or_default();
            let matches: Vec<usize> = items
                .iter()
                .enumerate()
                .filter(|(_, item)| item.source == source)
                .map(|(index, _)| index)
                .collect();
            let found = if offset < 0.0 {
                matches.last().copied()
            } else {
                matches.get(offset as usize).copied()
            };
            match found {
                Some(index) => Ok(json!({"sceneItemId": index + 1})),
                None => Err(Failure::new(
                    Status::ResourceNotFound,
                    format!("scene `{scene}` has no item of source `{source}`"),
                )),
            }
        }
        "GetSceneItemEnabled" => {
            let (_, _, item) = scene_item_of(controller, &fields)?;
            Ok(json!({"sceneItemEnabled": item.visible}))
        }
        "SetSceneItemEnabled" => {
            let (scene, index, _) = scene_item_of(controller, &fields)?;
            let visible = fields.bool("sceneItemEnabled")?;
            done(controller.request(Request::Edit(Edit::SetItemVisible {
                scene,
                index,
                visible,
            })))
        }
        "GetSceneItemLocked" => {
            let (_, _, item) = scene_item_of(controller, &fields)?;
            Ok(json!({"sceneItemLocked": item.locked}))
        }
        "SetSceneItemLocked" => {
            let (scene, index, _) = scene_item_of(controller, &fields)?;
            let locked = fields.bool("sceneItemLocked")?;
            done(controller.change(|collection| {
                if let Some(item) = collection
                    .scenes
                    .iter_mut()
                    .find(|s| s.name == scene)
                    .and_then(|s| s.items.get_mut(index))
                {
                    item.locked = locked;
                }
            }))
        }
        "GetSceneItemTransform" => {
            let (_, _, item) = scene_item_of(controller, &fields)?;
            let size = controller
                .stats()
                .and_then(|s| s.source_sizes.get(&item.source).copied());
            Ok(json!({"sceneItemTransform": transform(&item, size.as_ref())}))
        }
        "SetSceneItemTransform" => {
            let (scene, index, item) = scene_item_of(controller, &fields)?;
            let Some(Value::Object(asked)) = fields.0.get("sceneItemTransform") else {
                return Err(Failure::new(
                    Status::MissingRequestField,
                    "missing object field `sceneItemTransform`",
                ));
            };
            let asked = Fields(asked);
            let mut moved = item.clone();
            if let Some(x) = asked.optional_number("positionX")? {
                moved.position[0] = x as f32;
            }
            if let Some(y) = asked.optional_number("positionY")? {
                moved.position[1] = y as f32;
            }
            if let Some(rotation) = asked.optional_number("rotation")? {
                moved.rotation = rotation as f32;
            }
            if let crate::scene::ItemSize::Scale(scale) = &mut moved.size {
                if let Some(x) = asked.optional_number("scaleX")? {
                    scale[0] = x as f32;
                }
                if let Some(y) = asked.optional_number("scaleY")? {
                    scale[1] = y as f32;
                }
            }
            done(controller.change(|collection| {
                if let Some(slot) = collection
                    .scenes
                    .iter_mut()
                    .find(|s| s.name == scene)
                    .and_then(|s| s.items.get_mut(index))
                {
                    *slot = moved;
                }
            }))
        }
        "GetInputList" => {
            let kind = fields.optional_string("inputKind")?;
            let inputs: Vec<Value> = controller
                .collection()
                .sources
                .iter()
                .filter(|source| kind.as_deref().is_none_or(|k| k == source.kind.name()))
                .map(|source| {
                    json!({
                        "inputName": source.id, "inputUuid": uuid_for("input", &source.id),
                        "inputKind": source.kind.name(),
                        "unversionedInputKind": source.kind.name(),
                        "inputKindCaps": 0,
                    })
                })
                .collect();
            Ok(json!({"inputs": inputs}))
        }
        "GetInputKindList" => Ok(json!({"inputKinds": [
            "color", "image", "text", "media", "test_pattern", "screen", "audio_input", "camera",
        ]})),
        "GetInputSettings" => {
            let id = input_named(controller, &fields)?;
            let source = controller
                .collection()
                .source(&id)
                .cloned()
                .ok_or_else(|| gone(&id))?;
            let settings = serde_json::to_value(&source.kind).unwrap_or(Value::Null);
            Ok(json!({"inputSettings": settings, "inputKind": source.kind.name()}))
        }
        "SetInputSettings" => {
            let id = input_named(controller, &fields)?;
            let Some(Value::Object(settings)) = fields.0.get("inputSettings") else {
                return Err(Failure::new(
                    Status::MissingRequestField,
                    "missing object field `inputSettings`",
                ));
            };
            let settings = Fields(settings);
            let mut edits = Vec::new();
            if let Some(text) = settings.optional_string("text")? {
                edits.push(Edit::SetText {
                    source: id.clone(),
                    text,
                });
            }
            // OBS's media source calls its file `local_file`; Tally's scene files say `path`.
            let file = match settings.optional_string("local_file")? {
                Some(file) => Some(file),
                None => settings.optional_string("path")?,
            };
            if let Some(file) = file {
                edits.push(Edit::SetMediaFile {
                    source: id.clone(),
                    path: file.into(),
                });
            }
            if edits.is_empty() {
                return Err(Failure::new(
                    Status::InvalidRequestField,
                    "Tally sets a text source's `text` and a media source's `local_file` (or \
                     `path`); nothing else in `inputSettings` yet",
                ));
            }
            for edit in edits {
                controller.request(Request::Edit(edit))?;
            }
            Ok(Value::Null)
        }
        "GetInputMute" => {
            let id = input_named(controller, &fields)?;
            let audio = sound_of(controller.collection(), &id)?;
            Ok(json!({"inputMuted": audio.muted}))
        }
        "SetInputMute" => {
            let id = input_named(controller, &fields)?;
            let muted = fields.bool("inputMuted")?;
            done(controller.request(Request::Edit(Edit::SetMute { source: id, muted })))
        }
        "ToggleInputMute" => {
            let id = input_named(controller, &fields)?;
            let muted = !sound_of(controller.collection(), &id)?.muted;
            controller.request(Request::Edit(Edit::SetMute { source: id, muted }))?;
            Ok(json!({"inputMuted": muted}))
        }
        "GetInputVolume" => {
            let id = input_named(controller, &fields)?;
            let db = sound_of(controller.collection(), &id)?.volume_db;
            Ok(json!({"inputVolumeDb": db, "inputVolumeMul": db_to_mul(db)}))
        }
        "SetInputVolume" => {
            let id = input_named(controller, &fields)?;
            let db = match (
                fields.0.get("inputVolumeDb"),
                fields.0.get("inputVolumeMul"),
            ) {
                (Some(_), Some(_)) => {
                    return Err(Failure::new(
                        Status::TooManyRequestFields,
                        "give `inputVolumeDb` or `inputVolumeMul`, not both",
                    ))
                }
                (Some(_), None) => fields.number_in("inputVolumeDb", -100.0, 26.0)? as f32,
                (None, Some(_)) => mul_to_db(fields.number_in("inputVolumeMul", 0.0, 20.0)?),
                (None, None) => {
                    return Err(Failure::new(
                        Status::MissingRequestField,
                        "missing field `inputVolumeDb` (or `inputVolumeMul`)",
                    ))
                }
            };
            done(controller.request(Request::Edit(Edit::SetVolume { source: id, db })))
        }
        "GetMediaInputStatus" => {
            let id = input_named(controller, &fields)?;
            media_status(controller, &id)
        }
        "TriggerMediaInputAction" => {
            let id = input_named(controller, &fields)?;
            let action = fields.string("mediaAction")?;
            let control = match action.as_str() {
                "OBS_WEBSOCKET_MEDIA_INPUT_ACTION_PLAY" => MediaControl::Play,
                "OBS_WEBSOCKET_MEDIA_INPUT_ACTION_PAUSE" => MediaControl::Pause,
                "OBS_WEBSOCKET_MEDIA_INPUT_ACTION_RESTART" => MediaControl::Restart,
                other => {
                    return Err(Failure::new(
                        Status::InvalidRequestField,
                        format!("Tally plays, pauses and restarts media; not `{other}`"),
                    ))
                }
            };
            done(controller.request(Request::Media {
                source: id,
                control,
            }))
        }
        "GetStreamStatus" => {
            let (_, live_for) = controller.outputs_running_for(now);
            Ok(stream_status(controller, live_for))
        }
        "StartStream" => start_stream(controller),
        "StopStream" => done(controller.request(Request::StopStreaming)),
        "ToggleStream" => {
            if controller.state().streaming {
                controller.request(Request::StopStreaming)?;
                Ok(json!({"outputActive": false}))
            } else {
                start_stream(controller)?;
                Ok(json!({"outputActive": true}))
            }
        }
        "GetRecordStatus" => {
            let (running_for, _) = controller.outputs_running_for(now);
            let active = controller.state().recording.is_some();
            let duration = running_for.unwrap_or_default();
            let bytes = controller
                .state()
                .recording
                .and_then(|path| std::fs::metadata(path).ok())
                .map_or(0, |meta| meta.len());
            Ok(json!({
                "outputActive": active, "outputPaused": false,
                "outputTimecode": timecode(duration),
                "outputDuration": duration.as_millis() as u64,
                "outputBytes": bytes,
            }))
        }
        "StartRecord" => start_record(controller),
        "StopRecord" => {
            let path = controller.state().recording;
            controller.request(Request::StopRecording)?;
            Ok(json!({"outputPath": path.map(|p| p.display().to_string())}))
        }
        "ToggleRecord" => {
            if controller.state().recording.is_some() {
                controller.request(Request::StopRecording)?;
                Ok(json!({"outputActive": false}))
            } else {
                start_record(controller)?;
                Ok(json!({"outputActive": true}))
            }
        }
        "PauseRecord" | "ResumeRecord" => Err(Failure::new(
            Status::RequestProcessingFailed,
            "Tally's recordings cannot pause: stop the recording and start a new one",
        )),
        "GetOutputList" => {
            let state = controller.state();
            let mut outputs = vec![json!({
                "outputName": "recording", "outputKind": "tally_recording",
                "outputActive": state.recording.is_some(),
                "outputFlags": {"OBS_OUTPUT_VIDEO": true, "OBS_OUTPUT_AUDIO": true},
            })];
            for output in controller.stats().map(|s| s.outputs).unwrap_or_default() {
                outputs.push(json!({
                    "outputName": output.name, "outputKind": "tally_stream",
                    "outputActive": !matches!(output.state,
                        crate::output::OutputState::Stopped | crate::output::OutputState::Failed(_)),
                    "outputFlags": {"OBS_OUTPUT_VIDEO": true, "OBS_OUTPUT_AUDIO": true,
                        "OBS_OUTPUT_SERVICE": true},
                }));
            }
            Ok(json!({"outputs": outputs}))
        }
        "GetSceneCollectionList" => {
            let (current, names) = collection_list(controller);
            Ok(json!({"currentSceneCollectionName": current, "sceneCollections": names}))
        }
        "SetCurrentSceneCollection" => {
            let name = fields.string("sceneCollectionName")?;
            let Some(file) = controller
                .file()
                .and_then(|f| f.parent())
                .map(|dir| dir.join(format!("{name}.toml")))
            else {
                return Err(Failure::new(
                    Status::ResourceNotFound,
                    "the open collection has no folder",
                ));
            };
            if !file.is_file() {
                return Err(Failure::new(
                    Status::ResourceNotFound,
                    format!("no collection `{name}` beside the open one (GetSceneCollectionList)"),
                ));
            }
            controller
                .open(&file)
                .map_err(|error| Failure::new(Status::ResourceActionFailed, error.to_string()))?;
            Ok(Value::Null)
        }
        "CallVendorRequest" => vendor_request(controller, &fields),
        other => Err(Failure::new(
            Status::UnknownRequestType,
            format!("Tally does not answer `{other}` (GetVersion lists what it does)"),
        )),
    }
}

fn done(result: Result<(), RequestError>) -> Answer {
    result.map(|()| Value::Null).map_err(Failure::from)
}

fn gone(id: &str) -> Failure {
    Failure::new(
        Status::ResourceNotFound,
        format!("no input is named `{id}`"),
    )
}

/// The scene a request names by `sceneName` or `sceneUuid`.
fn scene_named(controller: &Controller, fields: &Fields<'_>) -> Result<String, Failure> {
    let collection = controller.collection();
    named(
        fields,
        "scene",
        collection.scenes.iter().map(|scene| scene.name.as_str()),
        |name| crate::scene::unknown_scene(collection, name).to_string(),
    )
}

/// The input (Tally's source) a request names by `inputName` or `inputUuid`.
fn input_named(controller: &Controller, fields: &Fields<'_>) -> Result<String, Failure> {
    let collection = controller.collection();
    named(
        fields,
        "input",
        collection.sources.iter().map(|source| source.id.as_str()),
        |name| crate::scene::unknown_source(collection, name).to_string(),
    )
}

/// The one of `names` a request names by `{kind}Name` or `{kind}Uuid` (UUIDs derived as
/// [`uuid_for`] derives them); `unknown` says why a name is not one of them.
fn named<'n>(
    fields: &Fields<'_>,
    kind: &str,
    mut names: impl Iterator<Item = &'n str>,
    unknown: impl FnOnce(&str) -> String,
) -> Result<String, Failure> {
    let (name_field, uuid_field) = (format!("{kind}Name"), format!("{kind}Uuid"));
    if let Some(name) = fields.optional_string(&name_field)? {
        return match names.any(|known| known == name) {
            true => Ok(name),
            false => Err(Failure::new(Status::ResourceNotFound, unknown(&name))),
        };
    }
    if let Some(uuid) = fields.optional_string(&uuid_field)? {
        return names
            .find(|known| uuid_for(kind, known) == uuid)
            .map(str::to_string)
            .ok_or_else(|| {
                Failure::new(
                    Status::ResourceNotFound,
                    format!("no {kind} has UUID {uuid}"),
                )
            });
    }
    Err(Failure::new(
        Status::MissingRequestField,
        format!("missing field `{name_field}` (or `{uuid_field}`)"),
    ))
}

/// GetMediaInputStatus: where the engine is in a media source's file (`NONE` while no engine
/// plays it).
fn media_status(controller: &Controller, id: &str) -> Result<Value, Failure> {
    let source = controller.collection().source(id).ok_or_else(|| gone(id))?;
    if !matches!(source.kind, crate::scene::SourceKind::Media(_)) {
        return Err(Failure::new(
            Status::InvalidResourceType,
            format!(
                "input `{id}` is a {} source, which does not play media",
                source.kind.name()
            ),
        ));
    }
    let playback = controller
        .stats()
        .and_then(|stats| stats.media.get(id).copied());
    let millis = |duration: std::time::Duration| duration.as_millis() as u64;
    Ok(match playback {
        Some(playback) => json!({
            "mediaState": match playback.state {
                PlaybackState::Playing => "OBS_MEDIA_STATE_PLAYING",
                PlaybackState::Paused => "OBS_MEDIA_STATE_PAUSED",
                PlaybackState::Ended => "OBS_MEDIA_STATE_ENDED",
            },
            "mediaDuration": playback.duration.map(millis),
            "mediaCursor": millis(playback.cursor),
        }),
        None => json!({
            "mediaState": "OBS_MEDIA_STATE_NONE", "mediaDuration": null, "mediaCursor": null,
        }),
    })
}

fn sound_of<'c>(
    collection: &'c Collection,
    id: &str,
) -> Result<&'c crate::scene::AudioSettings, Failure> {
    let source = collection.source(id).ok_or_else(|| gone(id))?;
    source.kind.audio().ok_or_else(|| {
        Failure::new(
            Status::InvalidResourceType,
            format!(
                "input `{id}` is a {} source, which has no sound",
                source.kind.name()
            ),
        )
    })
}

/// The scene item a request names: its scene, its place (`sceneItemId` is the place + 1), and
/// the item.
fn scene_item_of(
    controller: &Controller,
    fields: &Fields<'_>,
) -> Result<(String, usize, Item), Failure> {
    let scene = scene_named(controller, fields)?;
    let id = fields.number("sceneItemId")?;
    let items = controller
        .collection()
        .scene(&scene)
        .map(|s| s.items.clone())
        .unwrap_or_default();
    let index = (id as usize).wrapping_sub(1);
    match items.get(index) {
        Some(item) if id >= 1.0 && id.fract() == 0.0 => Ok((scene, index, item.clone())),
        _ => Err(Failure::new(
            Status::ResourceNotFound,
            format!(
                "scene `{scene}` has no item {id} (it has {} items, 1 to {0})",
                items.len()
            ),
        )),
    }
}

fn scene_list(controller: &Controller) -> Value {
    let state = controller.state();
    let names: Vec<&str> = controller
        .collection()
        .scenes
        .iter()
        .map(|scene| scene.name.as_str())
        .collect();
    json!({
        "currentProgramSceneName": state.program,
        "currentProgramSceneUuid": uuid_for("scene", &state.program),
        "currentPreviewSceneName": state.preview,
        "currentPreviewSceneUuid": state.preview.as_ref().map(|scene| uuid_for("scene", scene)),
        "scenes": scene_entries(&names),
    })
}

/// The `scenes` array of GetSceneList and SceneListChanged, from the scene names bottom first
/// (as in the file): OBS lists scenes last first, each with its index from the bottom.
pub(super) fn scene_entries<S: AsRef<str>>(names: &[S]) -> Vec<Value> {
    names
        .iter()
        .enumerate()
        .rev()
        .map(|(index, name)| {
            let name = name.as_ref();
            json!({"sceneName": name, "sceneUuid": uuid_for("scene", name), "sceneIndex": index})
        })
        .collect()
}

fn scene_item(
    collection: &Collection,
    item: &Item,
    index: usize,
    size: Option<&[u32; 2]>,
) -> Value {
    let kind = collection
        .source(&item.source)
        .map_or("", |source| source.kind.name());
    json!({
        "sceneItemId": index + 1, "sceneItemIndex": index,
        "sourceName": item.source, "sourceUuid": uuid_for("input", &item.source),
        "sourceType": "OBS_SOURCE_TYPE_INPUT", "inputKind": kind, "isGroup": null,
        "sceneItemEnabled": item.visible, "sceneItemLocked": item.locked,
        "sceneItemBlendMode": "OBS_BLEND_NORMAL",
        "sceneItemTransform": transform(item, size),
    })
}

fn transform(item: &Item, size: Option<&[u32; 2]>) -> Value {
    let source = size.map_or([0.0, 0.0], |[w, h]| [*w as f32, *h as f32]);
    let cropped = [
        (source[0] - (item.crop.left + item.crop.right) as f32).max(0.0),
        (source[1] - (item.crop.top + item.crop.bottom) as f32).max(0.0),
    ];
    let (scale, bounds) = match item.size {
        crate::scene::ItemSize::Scale(scale) => (scale, None),
        crate::scene::ItemSize::Bounds(bounds) => ([1.0, 1.0], Some(bounds)),
    };
    json!({
        "positionX": item.position[0], "positionY": item.position[1],
        "rotation": item.rotation, "alignment": 5,
        "scaleX": scale[0], "scaleY": scale[1],
        "sourceWidth": source[0], "sourceHeight": source[1],
        "width": cropped[0] * scale[0], "height": cropped[1] * scale[1],
        "cropLeft": item.crop.left, "cropRight": item.crop.right,
        "cropTop": item.crop.top, "cropBottom": item.crop.bottom,
        "boundsType": if bounds.is_some() { "OBS_BOUNDS_SCALE_INNER" } else { "OBS_BOUNDS_NONE" },
        "boundsWidth": bounds.map_or(0.0, |b| b.width),
        "boundsHeight": bounds.map_or(0.0, |b| b.height),
        "boundsAlignment": 0,
    })
}

fn stats(controller: &Controller, session: SessionCounts) -> Value {
    let latest = controller.stats_history().latest().unwrap_or_default();
    let figures = controller.stats().unwrap_or_default();
    let disk = controller.settings().recordings_dir.clone();
    json!({
        "cpuUsage": latest.cpu_percent,
        "memoryUsage": crate::control::stats::process_rss_kb().unwrap_or(0) as f64 / 1024.0,
        "availableDiskSpace": available_mb(&disk, Instant::now()),
        "activeFps": latest.fps,
        "averageFrameRenderTime": figures.mean_render_time.as_secs_f64() * 1000.0,
        "renderSkippedFrames": figures.frames_lagged,
        "renderTotalFrames": figures.frames_rendered,
        "outputSkippedFrames": figures.frames_skipped,
        "outputTotalFrames": figures.frames_encoded,
        "webSocketSessionIncomingMessages": session.incoming,
        "webSocketSessionOutgoingMessages": session.outgoing,
    })
}

/// Reading free space costs a process (`df`): the figure is kept this long. Control surfaces
/// poll GetStats many times a second.
const DISK_FIGURE_KEPT: Duration = Duration::from_secs(5);

/// The last free-space figure: when, for which folder, and what.
static DISK_FIGURE: std::sync::Mutex<Option<(Instant, std::path::PathBuf, Value)>> =
    std::sync::Mutex::new(None);

/// Free space (MB) where recordings go, as of at most `DISK_FIGURE_KEPT` before `now`.
fn available_mb(folder: &std::path::Path, now: Instant) -> Value {
    let mut kept = crate::base::lock(&DISK_FIGURE);
    if let Some((at, of, figure)) = kept.as_ref() {
        if of == folder && now.saturating_duration_since(*at) < DISK_FIGURE_KEPT {
            return figure.clone();
        }
    }
    let figure = measured_available_mb(folder);
    *kept = Some((now, folder.to_path_buf(), figure.clone()));
    figure
}

/// Free space (MB) where recordings go, or null where that cannot be read.
fn measured_available_mb(folder: &std::path::Path) -> Value {
    let existing = folder.ancestors().find(|dir| dir.exists());
    let Some(dir) = existing else {
        return Value::Null;
    };
    match fs_free_bytes(dir) {
        Some(bytes) => json!(bytes as f64 / 1_048_576.0),
        None => Value::Null,
    }
}

fn fs_free_bytes(dir: &std::path::Path) -> Option<u64> {
    // `df` is everywhere Tally runs; reading statvfs would need unsafe code or another crate.
    let output = std::process::Command::new("df")
        .args(["-Pk", "--"])
        .arg(dir)
        .output()
        .ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let available_kb: u64 = text
        .lines()
        .nth(1)?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()?;
    Some(available_kb * 1024)
}

fn stream_status(controller: &Controller, live_for: Option<Duration>) -> Value {
    let outputs = controller.stats().map(|s| s.outputs).unwrap_or_default();
    let reconnecting = outputs
        .iter()
        .any(|o| matches!(o.state, crate::output::OutputState::Reconnecting { .. }));
    let congestion = outputs.iter().map(|o| o.congestion).fold(0.0, f64::max);
    let duration = live_for.unwrap_or_default();
    let figures = controller.stats().unwrap_or_default();
    json!({
        "outputActive": controller.state().streaming,
        "outputReconnecting": reconnecting,
        "outputTimecode": timecode(duration),
        "outputDuration": duration.as_millis() as u64,
        "outputCongestion": congestion.min(1.0),
        "outputBytes": outputs.iter().map(|o| o.bytes_sent).sum::<u64>(),
        "outputSkippedFrames": outputs.iter().map(|o| o.dropped_frames).sum::<u64>(),
        "outputTotalFrames": figures.frames_encoded,
    })
}

/// `HH:MM:SS.mmm`, as OBS writes output timecodes.
fn timecode(duration: Duration) -> String {
    let millis = duration.as_millis();
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        millis / 3_600_000,
        millis / 60_000 % 60,
        millis / 1000 % 60,
        millis % 1000
    )
}

fn start_stream(controller: &mut Controller) -> Answer {
    if controller.state().streaming {
        return Err(Failure::new(Status::OutputRunning, "already streaming"));
    }
    let mut destinations = Vec::new();
    let mut unusable = Vec::new();
    let parsed_destinations = controller.destinations_from_settings()?;
    for parsed in parsed_destinations {
        match parsed {
            Ok(destination) => destinations.push(destination),
            Err(error) => unusable.push(error.to_string()),
        }
    }
    if destinations.is_empty() && !controller.settings().hls {
        let why = if unusable.is_empty() {
            "no stream destination in the settings".to_string()
        } else {
            format!(
                "no usable stream destination in the settings: {}",
                unusable.join("; ")
            )
        };
        return Err(Failure::new(Status::OutputDisabled, why));
    }
    done(controller.request(Request::StartStreaming(destinations)))
}

fn start_record(controller: &mut Controller) -> Answer {
    if controller.state().recording.is_some() {
        return Err(Failure::new(Status::OutputRunning, "already recording"));
    }
    let recording = controller.new_recording(std::time::SystemTime::now())?;
    done(controller.request(Request::StartRecording(recording)))
}

/// The collections beside the open one (`*.toml` files in its folder that are not shows), by
/// name (the file's stem).
fn collection_list(controller: &Controller) -> (String, Vec<String>) {
    let Some(file) = controller.file() else {
        return (String::new(), Vec::new());
    };
    let stem = |path: &std::path::Path| {
        path.file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned())
    };
    let mut names: Vec<String> = file
        .parent()
        .and_then(|dir| std::fs::read_dir(dir).ok())
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        .filter(|path| !crate::show::looks_like_show(path))
        .map(|path| stem(&path))
        .collect();
    names.sort();
    (stem(file), names)
}

/// The `tally` vendor's requests: the show's cues.
fn vendor_request(controller: &mut Controller, fields: &Fields<'_>) -> Answer {
    let vendor = fields.string("vendorName")?;
    let request_type = fields.string("requestType")?;
    if vendor != "tally" {
        return Err(Failure::new(
            Status::ResourceNotFound,
            format!("no vendor is named `{vendor}` (Tally's is `tally`)"),
        ));
    }
    let empty = Map::new();
    let data = match fields.0.get("requestData") {
        Some(Value::Object(data)) => Fields(data),
        _ => Fields(&empty),
    };
    let response = match request_type.as_str() {
        "Go" => {
            controller.request(Request::Go)?;
            json!({})
        }
        "JumpToCue" => {
            let list = controller
                .cue_list()
                .ok_or_else(|| Failure::from(RequestError::NoShow))?;
            let index = match data.value("cue")? {
                Value::String(name) => list
                    .cues
                    .iter()
                    .position(|cue| cue.name == *name)
                    .ok_or_else(|| {
                        Failure::new(
                            Status::ResourceNotFound,
                            format!("no cue is named `{name}`"),
                        )
                    })?,
                Value::Number(number) => {
                    let number = number.as_u64().filter(|n| *n >= 1).ok_or_else(|| {
                        Failure::new(Status::RequestFieldOutOfRange, "`cue` counts from 1")
                    })?;
                    (number - 1) as usize
                }
                _ => return Err(wrong_type("cue", "a cue's name or number (from 1)")),
            };
            controller.request(Request::JumpToCue(index))?;
            json!({})
        }
        "GetCueList" => {
            let list = controller
                .cue_list()
                .ok_or_else(|| Failure::from(RequestError::NoShow))?;
            let cues: Vec<Value> = list
                .cues
                .iter()
                .enumerate()
                .map(|(index, cue)| json!({"number": index + 1, "name": cue.name}))
                .collect();
            json!({
                "cues": cues,
                "nextCue": list.status.next.map(|n| n + 1),
                "lastFiredCue": list.status.fired_last.map(|n| n + 1),
                "showTimeMs": list.status.show_time.as_millis() as u64,
                "dueInMs": list.status.due_in.map(|d| d.as_millis() as u64),
            })
        }
        other => {
            return Err(Failure::new(
                Status::UnknownRequestType,
                format!("the `tally` vendor answers Go, JumpToCue and GetCueList; not `{other}`"),
            ))
        }
    };
    Ok(json!({"vendorName": vendor, "requestType": request_type, "responseData": response}))
}
