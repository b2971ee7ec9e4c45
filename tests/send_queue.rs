//! The drop policy on real H.264: packets of a real recording pass through a `SendQueue` drained
//! by a simulated slow link (no network), are muxed, and what comes out must decode with no error.

mod common;

use common::{decode_errors, pattern_scene, run_ok, tally};
use ffmpeg_next as ffmpeg;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tally::encode::{EncodedPacket, StreamKind};
use tally::output::send_queue::{QueueSettings, SendQueue};

#[test]
fn what_the_queue_lets_through_always_decodes() {
    let dir = tempfile::tempdir().unwrap();
    let scene = pattern_scene(dir.path(), "30");
    let source = dir.path().join("source.mp4");
    run_ok(
        tally()
            .arg("record")
            .arg(&scene)
            .arg("-o")
            .arg(&source)
            .args(["--duration", "20s", "--fast", "--quiet"]),
    );

    ffmpeg::init().unwrap();
    let mut input = ffmpeg::format::input(&source).unwrap();
    let kinds: Vec<(StreamKind, ffmpeg::Rational)> = input
        .streams()
        .map(|s| {
            let kind = if s.parameters().medium() == ffmpeg::media::Type::Video {
                StreamKind::Video
            } else {
                StreamKind::Audio
            };
            (kind, s.time_base())
        })
        .collect();
    let output_path = dir.path().join("through.mp4");
    let mut output = ffmpeg::format::output(&output_path).unwrap();
    for stream in input.streams() {
        let mut out = output
            .add_stream(ffmpeg::encoder::find(ffmpeg::codec::Id::None))
            .unwrap();
        out.set_parameters(stream.parameters());
    }
    output.write_header().unwrap();
    let out_time_bases: Vec<ffmpeg::Rational> = output.streams().map(|s| s.time_base()).collect();

    let start = Instant::now();
    let mut queue = SendQueue::new(QueueSettings {
        drop_threshold: Duration::from_millis(500),
    });
    queue.set_connected();
    // Packets in the order an encoder releases them (by decode time).
    let mut packets: Vec<(f64, StreamKind, ffmpeg::Rational, ffmpeg::Packet)> = input
        .packets()
        .map(|(stream, packet)| {
            let (kind, time_base) = kinds[stream.index()];
            let at = packet.dts().unwrap_or(0) as f64 * f64::from(time_base);
            (at, kind, time_base, packet)
        })
        .collect();
    packets.sort_by(|a, b| a.0.total_cmp(&b.0));

    // The link sends one packet at a time: full speed, but 40 kB/s from 4 s to 14 s.
    let rate_at = |t: Instant| {
        let elapsed = t.duration_since(start).as_secs_f64();
        if (4.0..14.0).contains(&elapsed) {
            40_000.0
        } else {
            10_000_000.0
        }
    };
    let mut link_free_at = start;
    let mut sent = 0usize;
    let mut send_until =
        |queue: &mut SendQueue, now: Instant, output: &mut ffmpeg::format::context::Output| {
            while link_free_at <= now {
                let Some(packet) = queue.pop() else {
                    link_free_at = now; // idle: the next packet goes out when it arrives
                    break;
                };
                link_free_at +=
                    Duration::from_secs_f64(packet.packet.size() as f64 / rate_at(link_free_at));
                let index = if packet.kind == StreamKind::Video {
                    video_index(&kinds)
                } else {
                    audio_index(&kinds)
                };
                let mut copy = packet.packet.clone();
                copy.set_stream(index);
                copy.rescale_ts(packet.time_base, out_time_bases[index]);
                copy.set_position(-1);
                copy.write_interleaved(output).unwrap();
                sent += 1;
            }
        };
    for (at, kind, time_base, packet) in packets {
        let now = start + Duration::from_secs_f64(at.max(0.0));
        send_until(&mut queue, now, &mut output);
        queue.push(
            Arc::new(EncodedPacket {
                kind,
                packet,
                time_base,
            }),
            now,
        );
    }
    send_until(&mut queue, start + Duration::from_secs(3600), &mut output);
    output.write_trailer().unwrap();

    let counters = queue.counters();
    assert!(
        counters.dropped_frames > 50,
        "the squeeze should drop video: {counters:?}"
    );
    assert!(sent > 100);
    assert_eq!(
        decode_errors(&output_path),
        "",
        "dropped {} frames",
        counters.dropped_frames
    );
}

fn video_index(kinds: &[(StreamKind, ffmpeg::Rational)]) -> usize {
    kinds
        .iter()
        .position(|(k, _)| *k == StreamKind::Video)
        .unwrap()
}

fn audio_index(kinds: &[(StreamKind, ffmpeg::Rational)]) -> usize {
    kinds
        .iter()
        .position(|(k, _)| *k == StreamKind::Audio)
        .unwrap()
}
