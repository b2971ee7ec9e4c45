"""Reads an HLS master playlist and each of its media playlists with the m3u8 package (PyPI),
a parser that is not Tally's, and prints what it understood as one JSON object. Used by
tests/streaming.rs to check Tally's HLS output against the spec's tags.

    read_playlists.py URL-OR-PATH-OF-MASTER
"""

import json
import sys

import m3u8


def parts(segment):
    return [
        {"uri": part.uri, "duration": part.duration,
         "independent": part.independent == "YES"}
        for part in segment.parts
    ]


def media(uri):
    playlist = m3u8.load(uri)
    control = playlist.server_control
    hint = playlist.preload_hint
    return {
        "uri": uri,
        "version": playlist.version,
        "target_duration": playlist.target_duration,
        "media_sequence": playlist.media_sequence,
        "independent_segments": playlist.is_independent_segments,
        "init": [section.uri for section in playlist.segment_map],
        "segments": [
            {"uri": segment.uri, "duration": segment.duration,
             "program_date_time": segment.program_date_time is not None,
             "parts": parts(segment)}
            for segment in playlist.segments
        ],
        # LL-HLS (null in a plain playlist). Parts of a segment still being written are
        # listed by m3u8 as a segment without a URI.
        "part_target": playlist.part_inf.part_target if playlist.part_inf else None,
        "can_block_reload": control.can_block_reload if control else None,
        "part_hold_back": control.part_hold_back if control else None,
        "preload_hint": {"type": hint.hint_type, "uri": hint.uri} if hint else None,
        "endlist": playlist.is_endlist,
    }


def main():
    master = m3u8.load(sys.argv[1])
    if not master.is_variant:
        sys.exit(f"{sys.argv[1]} is not a master playlist")
    variants = []
    for variant in master.playlists:
        info = variant.stream_info
        variants.append({
            "uri": variant.absolute_uri,
            "bandwidth": info.bandwidth,
            "resolution": list(info.resolution) if info.resolution else None,
            "codecs": info.codecs,
        })
    print(json.dumps({
        "version": master.version,
        "variants": variants,
        "media": [media(variant["uri"]) for variant in variants],
    }))


if __name__ == "__main__":
    main()
