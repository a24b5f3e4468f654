#!/usr/bin/env bash
# fixtures.sh DIR: writes the asset-check fixtures into DIR with Debian's
# ffmpeg and exiftool (`make tools`, or apt-get install -y ffmpeg
# libimage-exiftool-perl). Nothing is downloaded. Prints one line per file
# written; a fixture whose encoder this ffmpeg lacks is skipped with a
# "skip NAME: reason" line on stderr. internal/assets tests run it into a
# temporary directory and check the checker against ffprobe and exiftool.
set -euo pipefail
out=${1:?usage: fixtures.sh DIR}
mkdir -p "$out"
cd "$out"
for t in ffmpeg ffprobe exiftool; do
  command -v "$t" >/dev/null || { echo "fixtures.sh: $t missing: run \`make tools\` (apt-get install -y ffmpeg libimage-exiftool-perl)" >&2; exit 3; }
done

ffmpeg -hide_banner -version >/dev/null 2>&1 || { echo "fixtures.sh: ffmpeg does not run (install incomplete?): run \`make tools\`" >&2; exit 3; }
ff() { ffmpeg -nostdin -hide_banner -loglevel error -y "$@"; }
encoders=$(ffmpeg -hide_banner -encoders 2>/dev/null)
has_enc() { grep -q " $1 " <<<"$encoders"; } # no pipe from ffmpeg: pipefail + grep -q's SIGPIPE
src="testsrc2=size=320x240:rate=25"
vid() { # vid NAME SECONDS ARGS...: an H.264/… video from a test pattern
  local name=$1 secs=$2 err; shift 2
  if err=$(ff -f lavfi -i "$src" -t "$secs" "$@" "$name" 2>&1); then echo "$name"
  else echo "skip $name: $(head -c 200 <<<"$err" | tr '\n' ' ')" >&2; rm -f "$name"; fi
}

# MP4: brands, fast start or not, pixel formats, codecs, fragmented.
x264="-c:v libx264 -preset ultrafast"
vid h264_mp42_faststart.mp4 2 $x264 -pix_fmt yuv420p -brand mp42 -movflags +faststart
vid h264_isom_faststart.mp4 2 $x264 -pix_fmt yuv420p -movflags +faststart
vid h264_mp42_moov_at_end.mp4 6 $x264 -pix_fmt yuv420p -brand mp42
vid h264_yuv444p.mp4 2 $x264 -pix_fmt yuv444p -brand mp42 -movflags +faststart
vid h264_yuv422p.mp4 2 $x264 -pix_fmt yuv422p -brand mp42 -movflags +faststart
vid h264_yuv420p10le.mp4 2 $x264 -pix_fmt yuv420p10le -profile:v high10 -brand mp42 -movflags +faststart
vid h264_yuvj420p.mp4 2 $x264 -pix_fmt yuvj420p -brand mp42 -movflags +faststart
vid h264_fragmented.mp4 3 $x264 -pix_fmt yuv420p -g 25 -movflags +frag_keyframe+empty_moov+default_base_moof
vid h264_odd_size.mp4 1 $x264 -pix_fmt yuv420p -vf scale=318:238 -brand mp42 -movflags +faststart
if ff -f lavfi -i "$src" -f lavfi -i "sine=frequency=440:sample_rate=48000" -t 2 $x264 -pix_fmt yuv420p -c:a aac -brand mp42 -movflags +faststart h264_with_audio.mp4 2>/dev/null; then
  echo h264_with_audio.mp4; else echo "skip h264_with_audio.mp4: aac" >&2; fi
vid h264.mov 1 $x264 -pix_fmt yuv420p -movflags +faststart
if has_enc libx265; then
  vid hevc_hvc1.mp4 1 -c:v libx265 -preset ultrafast -x265-params log-level=error -tag:v hvc1 -pix_fmt yuv420p -brand mp42 -movflags +faststart
  vid hevc_hev1_yuv420p10le.mp4 1 -c:v libx265 -preset ultrafast -x265-params log-level=error -pix_fmt yuv420p10le -brand mp42 -movflags +faststart
else echo "skip hevc: this ffmpeg has no libx265" >&2; fi
if has_enc libvpx-vp9; then
  vid vp9.mp4 1 -c:v libvpx-vp9 -deadline realtime -cpu-used 8 -b:v 200k -pix_fmt yuv420p -brand mp42 -movflags +faststart
else echo "skip vp9.mp4: no libvpx-vp9" >&2; fi
if has_enc libsvtav1; then
  vid av1.mp4 1 -c:v libsvtav1 -preset 12 -pix_fmt yuv420p -brand mp42 -movflags +faststart
elif has_enc libaom-av1; then
  vid av1.mp4 1 -c:v libaom-av1 -cpu-used 8 -row-mt 1 -b:v 200k -pix_fmt yuv420p -brand mp42 -movflags +faststart
else echo "skip av1.mp4: no AV1 encoder" >&2; fi
# A cut upload: the moov of a moov-at-end file is gone.
if [ -f h264_mp42_moov_at_end.mp4 ]; then
  head -c $(( $(stat -c %s h264_mp42_moov_at_end.mp4) / 2 )) h264_mp42_moov_at_end.mp4 > truncated.mp4; echo truncated.mp4
fi

# Images.
img() { local name=$1; shift; ff -f lavfi -i "testsrc2=size=$1" -frames:v 1 "${@:2}" "$name" && echo "$name"; }
img base.jpg 640x480 -q:v 3
for n in 1 2 3 4 5 6 7 8; do
  cp base.jpg "orient_$n.jpg"; exiftool -q -Orientation#=$n -overwrite_original "orient_$n.jpg"; echo "orient_$n.jpg"
done
cp base.jpg orient_6_intel.jpg
exiftool -q -ExifByteOrder=II -Orientation#=6 -overwrite_original orient_6_intel.jpg; echo orient_6_intel.jpg
# EXIF not first: an APP13 segment ahead of everything, then the JFIF APP0, then APP1.
{ printf '\xff\xd8\xff\xed\x00\x10Photoshop 3.0\x00'; tail -c +3 orient_3.jpg; } > exif_after_app13.jpg; echo exif_after_app13.jpg
# A big header: three 60 KB APP15 segments before APP1 and the frame header.
{ printf '\xff\xd8'; for i in 1 2 3; do printf '\xff\xef\xea\x60'; head -c 59998 /dev/zero; done; tail -c +3 orient_8.jpg; } > big_header.jpg; echo big_header.jpg
img photo_1920.jpg 1920x1080 -q:v 2
img base.png 400x300
cp base.png orient_6.png; exiftool -q -Orientation#=6 -overwrite_original orient_6.png; echo orient_6.png
cp base.png png_as_octet.png; echo png_as_octet.png
img base.gif 160x120
img base.bmp 64x48
img base.tiff 200x100
if has_enc libwebp; then
  img base.webp 300x200 -c:v libwebp
  cp base.webp orient_6.webp; exiftool -q -Orientation#=6 -overwrite_original orient_6.webp; echo orient_6.webp
else echo "skip webp: this ffmpeg has no libwebp" >&2; fi
printf 'not an asset\n' > notes.txt; echo notes.txt
head -c 4000 /dev/urandom > random.bin; echo random.bin
