// Load on Tally's remote control, for bench/remote.sh: CLIENTS connections (obs-websocket-js,
// MessagePack, InputVolumeMeters subscribed) each sending RATE requests a second for SECONDS,
// while the first one records. Prints one JSON object: round-trip percentiles, requests done
// per client, meter events per client. The requests name scene SCENE and input INPUT (the
// reference scene's, by default).
//   node load.mjs URL PASSWORD CLIENTS RATE SECONDS [SCENE INPUT]
import OBSWebSocket, { EventSubscription } from 'obs-websocket-js/msgpack';

const [url, password, clients, rate, seconds, scene = 'Benchmark', input = 'video'] =
  process.argv.slice(2);
const count = Number(clients);
const period = 1000 / Number(rate);
const until = Date.now() + Number(seconds) * 1000;
const subscriptions = EventSubscription.All | EventSubscription.InputVolumeMeters;

const connections = [];
for (let i = 0; i < count; i++) {
  const obs = new OBSWebSocket();
  await obs.connect(url, password, { eventSubscriptions: subscriptions });
  const client = { obs, done: 0, failed: 0, meters: 0, times: [] };
  obs.on('InputVolumeMeters', () => { client.meters += 1; });
  connections.push(client);
}
await connections[0].obs.call('StartRecord');

// Each client keeps its own schedule: a request every `period` ms, the next one due from the
// schedule, not from the answer, so a slow answer shows as latency and as requests not done.
const requests = [
  ['GetCurrentProgramScene', undefined],
  ['GetInputVolume', { inputName: input }],
  ['GetSceneItemList', { sceneName: scene }],
  ['GetStats', undefined],
];
const work = connections.map(async (client, index) => {
  let next = Date.now() + (period * index) / count;
  let n = 0;
  while (next < until) {
    const wait = next - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    const [type, data] = requests[n % requests.length];
    n += 1;
    const sent = process.hrtime.bigint();
    try {
      await client.obs.call(type, data);
      client.done += 1;
    } catch (error) {
      client.failed += 1;
    }
    client.times.push(Number(process.hrtime.bigint() - sent) / 1e6);
    next += period;
  }
});
await Promise.all(work);
console.error('load: requests done');
const stop = await connections[0].obs.call('StopRecord');
console.error('load: recording stopped');
for (const client of connections) await client.obs.disconnect();

const all = connections.flatMap((client) => client.times).sort((a, b) => a - b);
const at = (q) => all[Math.min(all.length - 1, Math.floor(q * all.length))];
console.log(JSON.stringify({
  requests: all.length,
  failed: connections.reduce((sum, c) => sum + c.failed, 0),
  p50_ms: at(0.5), p99_ms: at(0.99), max_ms: all[all.length - 1],
  per_client_done: [Math.min(...connections.map((c) => c.done)), Math.max(...connections.map((c) => c.done))],
  per_client_meter_events: [Math.min(...connections.map((c) => c.meters)), Math.max(...connections.map((c) => c.meters))],
  recording: stop.outputPath,
}));
