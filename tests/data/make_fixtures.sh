#!/usr/bin/env bash
# Regenerate the small media fixtures in tests/data from the CREMA-D sample clips
# (data/sample/crema-d, ODbL 1.0 / DbCL 1.0; see tests/data/README.md).
# Needs ffmpeg and ffprobe (made with Debian's ffmpeg 5.1); the tests themselves do not.
#
#   bash tests/data/make_fixtures.sh
#
# Prints each fixture's frame timestamps (ffprobe); tests/test_frames.py holds them as the
# expected values, so a changed fixture shows up as a failing test, not a silent change.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
sample="$here/../../data/sample/crema-d"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
enc=(-an -c:v libx264 -preset veryslow -threads 1 -pix_fmt yuv420p -map_metadata -1
     -fflags +bitexact -flags:v +bitexact)

# rotated90.mp4: the first 12 frames of the happy clip, stored turned 90 degrees clockwise
# (360x480) with a display matrix that turns them back (what a phone held sideways writes):
# upright, they are the sample's frames at 480x360.
ffmpeg -hide_banner -loglevel error -y -i "$sample/1001_DFA_HAP_XX.flv" -frames:v 12 \
    -vf transpose=clock "${enc[@]}" -crf 20 "$tmp/stored.mp4"
if ffmpeg -hide_banner -h full 2>/dev/null | grep -q -- '-display_rotation'; then
    # ffmpeg >= 6: an input option, counter-clockwise degrees
    ffmpeg -hide_banner -loglevel error -y -display_rotation 90 -i "$tmp/stored.mp4" -c copy \
        -map_metadata -1 -fflags +bitexact "$here/rotated90.mp4"
else
    # ffmpeg <= 5.1: the mov muxer turns the stream's rotate tag into the display matrix
    ffmpeg -hide_banner -loglevel error -y -i "$tmp/stored.mp4" -c copy -map_metadata -1 \
        -fflags +bitexact -metadata:s:v:0 rotate=90 "$here/rotated90.mp4"
fi
echo "rotated90.mp4:"
ffprobe -v error -select_streams v -show_entries stream=width,height:stream_side_data \
    -of compact "$here/rotated90.mp4"

# vfr.mp4: 20 frames of the neutral clip on an irregular clock, as phones record when the
# light drops: 10 frames 33 ms apart, a 253 ms stall, then 67 ms apart (millisecond time base,
# so the times are exact). Passthrough keeps every frame with its own timestamp.
ffmpeg -hide_banner -loglevel error -y -i "$sample/1001_DFA_NEU_XX.flv" -frames:v 20 \
    -vf "settb=1/1000,setpts=if(lt(N\,10)\,N*33\,550+(N-10)*67)" -fps_mode passthrough \
    -enc_time_base 1/1000 -video_track_timescale 1000 "${enc[@]}" -crf 23 "$here/vfr.mp4"
echo "vfr.mp4 frame times (s):"
ffprobe -v error -select_streams v -show_entries frame=pts_time -of csv=p=0 "$here/vfr.mp4" \
    | cut -d, -f1 | xargs
ls -l "$here"/rotated90.mp4 "$here"/vfr.mp4
