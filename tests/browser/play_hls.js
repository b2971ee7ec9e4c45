// Plays an HLS master playlist with hls.js (npm) in headless Chromium (Debian's, from apt),
// driven through puppeteer-core, and prints what the page saw as one JSON object. Used by
// tests/streaming.rs (LL-HLS plays, and switches rendition when the bandwidth is limited) and
// by bench/ll_hls_latency.sh (how long a frame takes from Tally's compositor to the screen).
//
//   node play_hls.js MASTER_URL [--watch SECONDS] [--limit-kbps KBPS --switch-within SECONDS]
//
// Latency is measured per presented frame (requestVideoFrameCallback): the wall clock when
// the frame is shown minus the program date-time of that frame, which Tally stamps with the
// moment the frame left its compositor.

const path = require("path");
const puppeteer = require("puppeteer-core");

function option(name, fallback) {
  const at = process.argv.indexOf(name);
  return at > 0 ? Number(process.argv[at + 1]) : fallback;
}

async function main() {
  const master = process.argv[2];
  const watchSeconds = option("--watch", 6);
  const limitKbps = option("--limit-kbps", 0);
  const switchWithin = option("--switch-within", 30);
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-dev-shm-usage", "--autoplay-policy=no-user-gesture-required",
      "--mute-audio"],
  });
  const result = { errors: [] };
  try {
    const page = await browser.newPage();
    page.on("pageerror", (error) => result.errors.push(`page: ${error.message}`));
    await page.setContent("<video id='video' muted playsinline></video>");
    await page.addScriptTag({
      path: path.join(__dirname, "node_modules/hls.js/dist/hls.min.js"),
    });
    result.mse_h264 = await page.evaluate(() =>
      MediaSource.isTypeSupported('video/mp4; codecs="avc1.64001e,mp4a.40.2"'));
    await page.evaluate((url) => {
      const video = document.getElementById("video");
      const hls = new Hls({ lowLatencyMode: true, debug: false });
      // Start at the top rendition, so that a limited bandwidth has somewhere to switch to.
      hls.on(Hls.Events.MANIFEST_PARSED, (_, data) => {
        hls.startLevel = data.levels.length - 1;
      });
      window.report = { switches: [], fatal: [], latencies: [], loadedParts: 0 };
      hls.on(Hls.Events.LEVEL_SWITCHED, (_, data) =>
        window.report.switches.push({ level: data.level, at: performance.now() }));
      hls.on(Hls.Events.FRAG_LOADED, (_, data) => {
        if (data.part) window.report.loadedParts += 1;
      });
      hls.on(Hls.Events.ERROR, (_, data) => {
        if (data.fatal) window.report.fatal.push(`${data.type}: ${data.details}`);
      });
      hls.loadSource(url);
      hls.attachMedia(video);
      video.play().catch((error) => window.report.fatal.push(`play: ${error.message}`));
      // The program date-time of a media time, from the fragment it falls in.
      const dateOf = (mediaTime) => {
        const level = hls.levels[hls.currentLevel];
        const fragments = (level && level.details && level.details.fragments) || [];
        for (const fragment of fragments) {
          if (fragment.programDateTime && mediaTime >= fragment.start &&
              mediaTime < fragment.start + fragment.duration) {
            return fragment.programDateTime + (mediaTime - fragment.start) * 1000;
          }
        }
        return null;
      };
      const onFrame = (now, frame) => {
        const shownAt = performance.timeOrigin + frame.expectedDisplayTime;
        const date = dateOf(frame.mediaTime);
        if (date !== null) window.report.latencies.push(shownAt - date);
        video.requestVideoFrameCallback(onFrame);
      };
      video.requestVideoFrameCallback(onFrame);
      window.hls = hls;
    }, master);
    const state = () => page.evaluate(() => ({
      position: document.getElementById("video").currentTime,
      level: window.hls.currentLevel,
      levels: window.hls.levels.map((level) => ({ bitrate: level.bitrate, height: level.height })),
      switches: window.report.switches.length,
      fatal: window.report.fatal,
      loadedParts: window.report.loadedParts,
    }));
    const waitFor = async (what, seconds, test) => {
      const deadline = Date.now() + seconds * 1000;
      for (;;) {
        const now = await state();
        if (now.fatal.length) throw new Error(`hls.js: ${now.fatal.join("; ")}`);
        if (test(now)) return now;
        if (Date.now() > deadline) throw new Error(`${what}: not within ${seconds} s: ${JSON.stringify(now)}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    };
    result.started = await waitFor("playback", 30, (now) => now.position > 1);
    // Watch for a while, then take the latency of the frames shown meanwhile.
    await page.evaluate(() => { window.report.latencies = []; });
    const watchFrom = (await state()).position;
    await waitFor("watching", watchSeconds + 20, (now) => now.position >= watchFrom + watchSeconds);
    const latencies = await page.evaluate(() => window.report.latencies.slice());
    latencies.sort((a, b) => a - b);
    const at = (share) => latencies.length ? latencies[Math.round((latencies.length - 1) * share)] : null;
    result.frames_measured = latencies.length;
    result.latency_ms = { median: at(0.5), p95: at(0.95), min: at(0), max: at(1) };
    result.watched = await state();
    if (limitKbps > 0) {
      const client = await page.createCDPSession();
      await client.send("Network.enable");
      await client.send("Network.emulateNetworkConditions", {
        offline: false,
        latency: 0,
        downloadThroughput: (limitKbps * 1000) / 8,
        uploadThroughput: -1,
      });
      const before = result.watched.level;
      result.limited = await waitFor(`a switch down from level ${before} at ${limitKbps} kbps`,
        switchWithin, (now) => now.level !== before &&
          now.levels[now.level].bitrate < now.levels[before].bitrate);
      const from = result.limited.position;
      result.after_switch = await waitFor("playing on after the switch", 30,
        (now) => now.position > from + 2);
    }
  } catch (error) {
    result.errors.push(String(error.message || error));
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(result));
  process.exit(result.errors.length ? 1 : 0);
}

main();
