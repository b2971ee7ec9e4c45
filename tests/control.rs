//! The show controller with a real engine: requests answered with their reasons, events to
//! every subscriber, edits with undo, a recording started and stopped by request.

mod common;

use std::path::Path;
use std::time::Duration;
use tally::control::{Controller, CueEdit, Received, Request, RequestError, Subscription};
use tally::engine::{EngineConfig, Event, RecordingConfig};
use tally::output::RecordingFormat;
use tally::scene::Edit;

fn collection(dir: &Path) -> tally::scene::Collection {
    let file = dir.join("show.toml");
    std::fs::write(
        &file,
        "current_scene = \"Wide\"\n\n[canvas]\nwidth = 64\nheight = 36\nfps = 30\n\n\
         [[sources]]\nid = \"red\"\nkind = \"color\"\ncolor = \"#ff0000\"\n\n\
         [[sources]]\nid = \"title\"\nkind = \"text\"\ntext = \"Hello\"\n\n\
         [[scenes]]\nname = \"Wide\"\n[[scenes.items]]\nsource = \"red\"\n\
         [[scenes.items]]\nsource = \"title\"\n\n\
         [[scenes]]\nname = \"Close\"\n[[scenes.items]]\nsource = \"title\"\n",
    )
    .unwrap();
    tally::scene::load_file(&file).unwrap()
}

fn controller(dir: &Path) -> Controller {
    std::env::set_var("XDG_RUNTIME_DIR", common::runtime_dir());
    let mut controller = Controller::new(
        collection(dir),
        Some(dir.join("show.toml")),
        EngineConfig::default(),
    );
    controller.start().expect("the engine starts");
    controller
}

/// Pumps the controller until `subscription` receives an event `wanted` accepts.
fn wait_for(
    controller: &mut Controller,
    subscription: &Subscription,
    wanted: impl Fn(&Event) -> bool,
) -> Event {
    let mut found = None;
    common::wait_until("the event", Duration::from_secs(30), || {
        controller.pump();
        while let Some(received) = subscription.try_next() {
            match received {
                Received::Event(event) if wanted(&event) => {
                    found = Some(event);
                    return true;
                }
                Received::Event(_) => {}
                Received::Overrun => panic!("the subscription was cut off"),
            }
        }
        false
    });
    found.expect("wait_until returns once the event came")
}

#[test]
fn a_request_that_cannot_be_carried_out_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let mut not_started = Controller::new(collection(dir.path()), None, EngineConfig::default());
    assert!(matches!(
        not_started.request(Request::SetProgramScene("Close".into())),
        Err(RequestError::NotRunning)
    ));
    assert!(matches!(
        not_started.request(Request::Save { to: None }),
        Err(RequestError::NoFile)
    ));
    drop(not_started);

    let mut controller = controller(dir.path());
    let why = |result: Result<(), RequestError>| result.expect_err("refused").to_string();
    assert_eq!(
        why(controller.request(Request::SetProgramScene("close".into()))),
        "no scene is named `close` (did you mean `Close`?)"
    );
    assert_eq!(
        why(controller.request(Request::StopRecording)),
        "nothing is being recorded"
    );
    assert_eq!(
        why(controller.request(Request::StopStreaming)),
        "nothing is being streamed"
    );
    assert_eq!(
        why(controller.request(Request::Take(tally::engine::transition::Transition::CUT))),
        "no scene is in preview (studio mode is off)"
    );
    assert_eq!(
        why(controller.request(Request::Media {
            source: "title".into(),
            control: tally::sources::MediaControl::Pause,
        })),
        "source `title` is a text source; this needs a media source"
    );
    assert_eq!(why(controller.request(Request::Undo)), "nothing to undo");
    controller.stop().unwrap();
}

#[test]
fn requests_reach_the_engine_and_every_subscriber_hears_the_recording_stop() {
    let dir = tempfile::tempdir().unwrap();
    let mut controller = controller(dir.path());
    let reader = controller.subscribe();
    // This one reads nothing until the end, while meter readings arrive ten times a second.
    let idle = controller.subscribe();

    controller
        .request(Request::SetProgramScene("Close".into()))
        .unwrap();
    wait_for(&mut controller, &reader, |event| {
        *event
            == Event::SceneChanged {
                scene: "Close".into(),
            }
    });
    assert_eq!(controller.state().program, "Close");

    // Studio mode: a fade taken by request is under way for a while, then done.
    controller
        .request(Request::SetPreviewScene(Some("Wide".into())))
        .unwrap();
    wait_for(&mut controller, &reader, |event| {
        *event
            == Event::PreviewChanged {
                scene: Some("Wide".into()),
            }
    });
    controller
        .request(Request::Take(tally::engine::transition::Transition::fade(
            Duration::from_secs(1),
        )))
        .unwrap();
    common::wait_until("the fade under way", Duration::from_secs(30), || {
        controller
            .state()
            .transition_progress
            .is_some_and(|progress| progress > 0.0 && progress < 1.0)
    });
    wait_for(&mut controller, &reader, |event| {
        *event
            == Event::SceneChanged {
                scene: "Wide".into(),
            }
    });
    common::wait_until("the fade done", Duration::from_secs(30), || {
        controller.state().transition_progress.is_none()
    });

    let file = dir.path().join("take.mkv");
    let recording = RecordingConfig {
        path: file.clone(),
        format: RecordingFormat::Mkv,
        profile: None,
    };
    controller
        .request(Request::StartRecording(recording.clone()))
        .unwrap();
    assert!(matches!(
        controller.request(Request::StartRecording(recording)),
        Err(RequestError::AlreadyRecording(path)) if path == file
    ));
    // A second of show with the recording running.
    wait_for(&mut controller, &reader, |event| {
        matches!(event, Event::AudioLevels(_))
    });
    let until = controller.stats().unwrap().frames_rendered + 30;
    common::wait_until("30 more frames", Duration::from_secs(30), || {
        controller.pump();
        controller.stats().unwrap().frames_rendered >= until
    });
    controller.request(Request::StopRecording).unwrap();
    let stopped = wait_for(&mut controller, &reader, |event| {
        matches!(event, Event::RecordingStopped { .. })
    });
    assert_eq!(
        stopped,
        Event::RecordingStopped {
            path: file.clone(),
            error: None
        }
    );
    assert_eq!(controller.state().recording, None);
    assert!(std::fs::metadata(&file).unwrap().len() > 0);

    // The idle subscriber kept every change of state, and only the newest meter reading.
    let mut changes = Vec::new();
    let mut readings = 0;
    while let Some(received) = idle.try_next() {
        match received {
            Received::Event(Event::AudioLevels(_)) => readings += 1,
            Received::Event(event) => changes.push(event),
            Received::Overrun => panic!("cut off"),
        }
    }
    assert!(changes.contains(&Event::SceneChanged {
        scene: "Close".into()
    }));
    assert!(changes.contains(&stopped), "{changes:?}");
    assert_eq!(readings, 1);
    assert!(idle.levels_lost() > 0);
    controller.stop().unwrap();
}

#[test]
fn edits_are_undone_and_redone_and_saved() {
    let dir = tempfile::tempdir().unwrap();
    let mut controller = controller(dir.path());
    let original = controller.collection().clone();
    controller
        .request(Request::Edit(Edit::SetItemVisible {
            scene: "Wide".into(),
            index: 1,
            visible: false,
        }))
        .unwrap();
    controller
        .request(Request::Edit(Edit::SetText {
            source: "title".into(),
            text: "Goodbye".into(),
        }))
        .unwrap();
    let edited = controller.collection().clone();
    assert!(!edited.scenes[0].items[1].visible);
    assert!(controller.state().unsaved);

    controller.request(Request::Undo).unwrap();
    controller.request(Request::Undo).unwrap();
    assert_eq!(controller.collection(), &original);
    controller.request(Request::Redo).unwrap();
    controller.request(Request::Redo).unwrap();
    assert_eq!(controller.collection(), &edited);

    let saved = dir.path().join("saved.toml");
    controller
        .request(Request::Save {
            to: Some(saved.clone()),
        })
        .unwrap();
    assert!(!controller.state().unsaved);
    let mut reloaded = tally::scene::load_file(&saved).unwrap();
    reloaded.base_dir = edited.base_dir.clone();
    assert_eq!(reloaded, edited);
    controller.stop().unwrap();
}

#[test]
fn adding_a_scene_and_undoing_it_announce_the_scene_list() {
    let dir = tempfile::tempdir().unwrap();
    let mut controller = controller(dir.path());
    let reader = controller.subscribe();
    let scenes = |event: &Event| match event {
        Event::ScenesChanged { scenes } => Some(scenes.clone()),
        _ => None,
    };
    controller
        .change(|collection| {
            let mut copy = collection.scenes[1].clone();
            copy.name = "Two-shot".into();
            collection.scenes.push(copy);
        })
        .unwrap();
    let added = wait_for(&mut controller, &reader, |event| scenes(event).is_some());
    assert_eq!(scenes(&added).unwrap(), ["Wide", "Close", "Two-shot"]);
    // A change that leaves the scenes as they were says nothing of them.
    controller
        .request(Request::Edit(Edit::SetText {
            source: "title".into(),
            text: "Hi".into(),
        }))
        .unwrap();
    controller.request(Request::Undo).unwrap();
    controller.request(Request::Undo).unwrap();
    let mut announced = Vec::new();
    common::wait_until("the undo's scene list", Duration::from_secs(30), || {
        controller.pump();
        while let Some(Received::Event(event)) = reader.try_next() {
            announced.extend(scenes(&event));
        }
        !announced.is_empty()
    });
    assert_eq!(announced, [vec!["Wide".to_string(), "Close".to_string()]]);
    controller.stop().unwrap();
}

#[test]
fn a_cues_edits_reach_the_controller_and_a_later_edit_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    std::env::set_var("XDG_RUNTIME_DIR", common::runtime_dir());
    let collection_file = dir.path().join("show.toml");
    let collection = collection(dir.path());
    let show = tally::show::parse_str(
        "collection = \"show.toml\"\n\n[[cues]]\nname = \"Retitle\"\nactions = [\n  \
         { do = \"text\", source = \"title\", text = \"From the cue\" },\n  \
         { do = \"hide\", scene = \"Wide\", source = \"red\" },\n]\n",
        &dir.path().join("run.show.toml"),
        dir.path(),
    )
    .expect("the show loads");
    let runner = tally::show::CueRunner::new(&show, false, || Duration::ZERO);
    let mut controller =
        Controller::new(collection, Some(collection_file), EngineConfig::default())
            .with_show(&show, runner);
    let events = controller.subscribe();
    controller.start().expect("the engine starts");
    controller.request(Request::Go).expect("GO is taken");
    wait_for(&mut controller, &events, |event| {
        matches!(event, Event::Edited(Edit::SetSourceVisible { .. }))
    });
    let title = |controller: &Controller| match &controller.collection().sources[1].kind {
        tally::scene::SourceKind::Text(text) => text.text.clone(),
        other => panic!("title is a {} source", other.name()),
    };
    assert_eq!(title(&controller), "From the cue");
    assert!(!controller.collection().scenes[0].items[0].visible);
    // A cue's edit is no operator's: nothing to undo, nothing unsaved.
    let state = controller.state();
    assert!(!state.can_undo && !state.unsaved);

    controller
        .request(Request::Edit(Edit::SetItemVisible {
            scene: "Close".into(),
            index: 0,
            visible: false,
        }))
        .expect("the edit is taken");
    assert_eq!(title(&controller), "From the cue");
    assert!(!controller.collection().scenes[0].items[0].visible);
    controller.request(Request::Undo).expect("the edit undoes");
    assert!(controller.collection().scenes[1].items[0].visible);
    assert_eq!(title(&controller), "From the cue");
}

#[test]
fn cues_are_added_moved_retriggered_and_removed_undone_and_saved_and_a_jump_moves_the_show() {
    let dir = tempfile::tempdir().unwrap();
    std::env::set_var("XDG_RUNTIME_DIR", common::runtime_dir());
    collection(dir.path());
    let show_file = dir.path().join("run.show.toml");
    std::fs::write(
        &show_file,
        "collection = \"show.toml\"\n\n[[cues]]\nname = \"First\"\n\
         actions = [{ do = \"take\", scene = \"Close\" }]\n\n\
         [[cues]]\nname = \"Second\"\nactions = [{ do = \"take\", scene = \"Wide\" }]\n",
    )
    .unwrap();
    let mut controller = Controller::new(collection(dir.path()), None, EngineConfig::default());
    assert!(matches!(
        controller.request(Request::Go),
        Err(RequestError::NoShow)
    ));
    controller.open_show(&show_file).expect("the show opens");
    let events = controller.subscribe();
    controller.start().expect("the engine starts");
    let names = |controller: &Controller| -> Vec<String> {
        let list = controller.cue_list().expect("a show is open");
        list.cues.into_iter().map(|cue| cue.name).collect()
    };
    let new_cue = tally::show::Cue {
        name: tally::control::unused_name(&controller.cue_list().unwrap().cues),
        trigger: tally::show::Trigger::Go,
        actions: vec![tally::show::Action::Take {
            scene: "Close".into(),
            transition: tally::engine::Transition::CUT,
        }],
    };
    controller
        .request(Request::EditCues(CueEdit::Add {
            at: 2,
            cue: new_cue,
        }))
        .unwrap();
    controller
        .request(Request::EditCues(CueEdit::Move { from: 2, to: 0 }))
        .unwrap();
    controller
        .request(Request::EditCues(CueEdit::SetTrigger {
            cue: 0,
            trigger: tally::show::Trigger::After(Duration::from_secs(5)),
        }))
        .unwrap();
    assert_eq!(names(&controller), ["Cue 3", "First", "Second"]);
    assert!(controller.cue_list().unwrap().unsaved);
    controller
        .request(Request::EditCues(CueEdit::Remove(1)))
        .unwrap();
    assert_eq!(names(&controller), ["Cue 3", "Second"]);
    controller.request(Request::Undo).unwrap();
    assert_eq!(names(&controller), ["Cue 3", "First", "Second"]);
    let refused = controller.request(Request::EditCues(CueEdit::Remove(7)));
    assert_eq!(
        refused.expect_err("no cue 8").to_string(),
        "the show has 3 cue(s); there is no cue 8"
    );

    controller.request(Request::SaveShow { to: None }).unwrap();
    assert!(!controller.cue_list().unwrap().unsaved);
    let saved = tally::show::load_file(&show_file).expect("the saved show loads");
    assert_eq!(saved.cues, controller.cue_list().unwrap().cues);
    assert_eq!(
        saved.cues[0].trigger,
        tally::show::Trigger::After(Duration::from_secs(5))
    );

    // Jump over the first two cues: `Second` waits for GO, and GO fires it.
    controller.request(Request::JumpToCue(2)).unwrap();
    assert_eq!(controller.cue_list().unwrap().status.next, Some(2));
    assert_eq!(controller.cue_list().unwrap().status.due_in, None);
    controller.request(Request::Go).unwrap();
    let fired = wait_for(&mut controller, &events, |event| {
        matches!(event, Event::CueFired { .. })
    });
    assert!(matches!(fired, Event::CueFired { cue: 2, .. }), "{fired:?}");
    assert_eq!(controller.cue_list().unwrap().status.next, None);
}

#[test]
fn recordings_from_the_settings_are_named_by_their_time_and_never_replace_a_take() {
    let dir = tempfile::tempdir().unwrap();
    let settings = tally::control::Settings {
        recordings_dir: dir.path().join("takes"),
        recording_format: "mkv".into(),
        destinations: vec!["rtmp://127.0.0.1/live/key".into(), "ftp://nowhere".into()],
        ..Default::default()
    };
    let controller = Controller::new(collection(dir.path()), None, EngineConfig::default())
        .with_settings(settings, None);
    let at = std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let first = controller.new_recording(at).unwrap();
    assert_eq!(first.path, dir.path().join("takes/tally-1800000000.mkv"));
    assert_eq!(first.format, RecordingFormat::Mkv);
    std::fs::write(&first.path, b"an earlier take").unwrap();
    let second = controller.new_recording(at).unwrap();
    assert_eq!(second.path, dir.path().join("takes/tally-1800000000-2.mkv"));
    let destinations = controller.destinations_from_settings().unwrap();
    assert!(destinations[0].is_ok());
    assert!(destinations[1]
        .as_ref()
        .is_err_and(|error| error.to_string().contains("unknown scheme `ftp`")));
}

#[test]
fn the_settings_profiles_go_with_recordings_and_streams() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = tally::control::Settings {
        recordings_dir: dir.path().join("takes"),
        destinations: vec!["rtmp://127.0.0.1/live/key".into()],
        profiles: vec!["archive=bitrate=9000".into()],
        recording_profile: "archive".into(),
        stream_profile: "360p".into(),
        ..Default::default()
    };
    let controller = Controller::new(collection(dir.path()), None, EngineConfig::default())
        .with_settings(settings.clone(), None);
    let at = std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let recording = controller.new_recording(at).unwrap();
    let archive = recording.profile.expect("the recording's profile");
    assert_eq!(archive.name, "archive");
    assert_eq!(archive.video.bitrate_kbps(), Some((9000, 9000)));
    let destinations = controller.destinations_from_settings().unwrap();
    let streamed = destinations[0].as_ref().unwrap().profile.clone().unwrap();
    assert_eq!(
        (streamed.name.as_str(), streamed.size.map(|s| s.1)),
        ("360p", Some(360))
    );
    // A name that is no profile is refused, with what it is.
    settings.stream_profile = "4k".into();
    let controller = Controller::new(collection(dir.path()), None, EngineConfig::default())
        .with_settings(settings, None);
    let error = controller.destinations_from_settings().unwrap_err();
    assert!(
        error.to_string().contains("`4k` is not a profile"),
        "{error}"
    );
}
