// What an RTMP server reads of one publish, as node-media-server's own RTMP parser reads it:
// listens on loopback, takes one publisher, and prints JSON lines on stdout:
//   {"event":"listening","port":N}
//   {"event":"publish","connect":{...the connect command's object...},"stream":"key"}
//   {"event":"closed","packets":{...counts by kind...},"videoCodecs":[fourcc numbers]}
// then exits. Used by tests/streaming.rs to check what Tally's RTMP client sends.
"use strict";
const net = require("node:net");
const Rtmp = require("node-media-server/src/protocol/rtmp.js");

const print = (line) => process.stdout.write(JSON.stringify(line) + "\n");
const kinds = { 0: "audioHeader", 1: "audio", 2: "videoHeader", 3: "keyframe", 4: "frame", 5: "script" };

const server = net.createServer((socket) => {
  const rtmp = new Rtmp();
  const packets = {};
  const videoCodecs = new Set();
  rtmp.onOutputCallback = (buffer) => socket.write(buffer);
  rtmp.onPushCallback = () =>
    print({ event: "publish", connect: rtmp.connectCmdObj, stream: rtmp.streamName });
  rtmp.onPacketCallback = (packet) => {
    const kind = kinds[packet.flags] ?? `flags${packet.flags}`;
    packets[kind] = (packets[kind] ?? 0) + 1;
    if (packet.codec_type === 9) {
      videoCodecs.add(packet.codec_id);
    }
  };
  socket.on("data", (data) => {
    const error = rtmp.parserData(data);
    if (error) {
      print({ event: "error", error: String(error) });
      socket.destroy();
    }
  });
  socket.on("error", (error) => print({ event: "error", error: String(error) }));
  socket.on("close", () => {
    print({ event: "closed", packets, videoCodecs: [...videoCodecs] });
    server.close();
  });
});
server.listen(0, "127.0.0.1", () => print({ event: "listening", port: server.address().port }));
