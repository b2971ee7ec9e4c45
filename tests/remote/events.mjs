// Tally's transition, media and scene-list events through obs-websocket-js (MessagePack), as
// tests/remote.rs asks: `node events.mjs URL PASSWORD`. Prints one JSON object with what it
// saw; the Rust test checks it.
import OBSWebSocket, { EventSubscription } from 'obs-websocket-js/msgpack';
import { pollUntil, watchEvents } from './watch.mjs';

const [url, password] = process.argv.slice(2);
const report = { events: [] };
const obs = new OBSWebSocket();
await obs.connect(url, password, { eventSubscriptions: EventSubscription.All });

const until = watchEvents(obs, [
  'SceneTransitionStarted', 'SceneTransitionEnded', 'SceneTransitionVideoEnded',
  'CurrentProgramSceneChanged', 'MediaInputPlaybackEnded', 'SceneListChanged',
], report);
const mediaStatus = () => obs.call('GetMediaInputStatus', { inputName: 'once' });
const pollStatus = (accept) => pollUntil(
  obs, 'GetMediaInputStatus', { inputName: 'once' }, accept,
  'GetMediaInputStatus never said what was expected',
);

// The clip plays once: it is playing, then it ends and says so.
const ended = until('MediaInputPlaybackEnded', (d) => d.inputName === 'once');
report.playing = await pollStatus((status) => status.mediaState === 'OBS_MEDIA_STATE_PLAYING');
await ended;
report.ended = await mediaStatus();
// Restarted, it plays again from its beginning.
await obs.call('TriggerMediaInputAction', {
  inputName: 'once', mediaAction: 'OBS_WEBSOCKET_MEDIA_INPUT_ACTION_RESTART',
});
report.restarted = await pollStatus((status) => status.mediaState === 'OBS_MEDIA_STATE_PLAYING');
try {
  await obs.call('GetMediaInputStatus', { inputName: 'red' });
  report.statusOfAColour = 'answered';
} catch (error) {
  report.statusOfAColour = error.code;
}

// A timed transition: started, program changed, ended.
await obs.call('SetCurrentSceneTransition', { transitionName: 'Fade' });
await obs.call('SetCurrentSceneTransitionDuration', { transitionDuration: 300 });
const transitioned = until('SceneTransitionEnded');
await obs.call('SetCurrentProgramScene', { sceneName: 'B' });
await transitioned;

// Another collection: its scenes are announced.
const listed = until('SceneListChanged');
await obs.call('SetCurrentSceneCollection', { sceneCollectionName: 'other' });
report.sceneList = await listed;
await obs.disconnect();
console.log(JSON.stringify(report));
