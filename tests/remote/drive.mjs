// Drives Tally's remote control with obs-websocket-js (the npm client Bitfocus Companion uses)
// over MessagePack, as tests/remote.rs asks: `node drive.mjs URL PASSWORD`. Prints one JSON
// object with what it saw; the Rust test checks it, the recording and the sound.
import OBSWebSocket, { EventSubscription } from 'obs-websocket-js/msgpack';
import { pollUntil, watchEvents } from './watch.mjs';

const [url, password] = process.argv.slice(2);
const report = { events: [] };

// A wrong password is refused with the spec's close code.
const refused = new OBSWebSocket();
try {
  await refused.connect(url, 'not the password');
  report.wrongPassword = 'accepted';
} catch (error) {
  report.wrongPassword = error.code;
}

const obs = new OBSWebSocket();
// A bit from a newer event class than Tally knows must be ignored, not refused.
const subscriptions = EventSubscription.All | (1 << 28);
const hello = await obs.connect(url, password, { eventSubscriptions: subscriptions });
report.rpcVersion = hello.negotiatedRpcVersion;

const until = watchEvents(
  obs, ['RecordStateChanged', 'CurrentProgramSceneChanged', 'InputVolumeChanged'], report,
);

const version = await obs.call('GetVersion');
report.version = {
  supportedImageFormats: Array.isArray(version.supportedImageFormats),
  requests: version.availableRequests.length,
  rpcVersion: version.rpcVersion,
};

await obs.call('SetCurrentSceneTransition', { transitionName: 'Cut' });
const started = until('RecordStateChanged', (d) => d.outputState === 'OBS_WEBSOCKET_OUTPUT_STARTED');
await obs.call('StartRecord');
await started;
// A second of scene A at full volume (the status's own clock says when).
const recorded = (millis) => pollUntil(
  obs, 'GetRecordStatus', undefined, (status) => status.outputDuration >= millis,
  `the recording never reached ${millis} ms`,
);
await recorded(1500);
await obs.call('SetInputVolume', { inputName: 'clip', inputVolumeDb: -20 });
await obs.call('SetCurrentProgramScene', { sceneName: 'B' });
report.volume = await obs.call('GetInputVolume', { inputName: 'clip' });
await until('CurrentProgramSceneChanged', (d) => d.sceneName === 'B');
await recorded(3000);
const stopped = until('RecordStateChanged', (d) => d.outputState === 'OBS_WEBSOCKET_OUTPUT_STOPPED');
report.stop = await obs.call('StopRecord');
await stopped;

// A batch halts at its first failure; each result keeps its own id, in order.
const batch = await obs.callBatch(
  [
    { requestType: 'GetCurrentProgramScene', requestId: 'one' },
    { requestType: 'Sleep', requestData: { sleepMillis: 50 }, requestId: 'two' },
    { requestType: 'SetCurrentProgramScene', requestData: { sceneName: 'Nowhere' }, requestId: 'three' },
    { requestType: 'GetVersion', requestId: 'four' },
  ],
  { haltOnFailure: true },
);
report.batch = batch.map((result) => ({
  id: result.requestId,
  ok: result.requestStatus.result,
  code: result.requestStatus.code,
  comment: result.requestStatus.comment,
}));
try {
  await obs.call('GetSourceFilterKindList');
  report.unknownRequest = 'answered';
} catch (error) {
  report.unknownRequest = error.code;
}
await obs.disconnect();
console.log(JSON.stringify(report));
