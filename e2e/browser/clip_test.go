package browser

import (
	"bytes"
	"encoding/binary"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

// The test video: H.264 (Constrained Baseline, CAVLC) in yuv420p, in an MP4
// with major brand mp42, written by hand so the suite needs no encoder.
// Every macroblock of a key frame is I_PCM (raw samples, so the decoded
// picture is exact); the frames between key frames are all P_Skip (a copy
// of the previous frame, a few bytes each). Each second is one solid color
// from clipColors, so a frame drawn on a canvas tells which second the
// player is showing.
const (
	clipWidth   = 64
	clipHeight  = 48
	clipFPS     = 10
	clipSeconds = 4
	clipFile    = "testdata/clip.mp4"
)

// clipColors are the colors of seconds 0, 1, 2 and 3.
var clipColors = [clipSeconds][3]uint8{
	{220, 40, 40},  // red
	{40, 200, 60},  // green
	{50, 60, 220},  // blue
	{230, 220, 60}, // yellow
}

var updateClip = flag.Bool("update-clip", false, "rewrite "+clipFile+" from the generator")

// TestClipIsGenerated keeps the committed clip equal to what the generator
// writes: go test ./e2e/browser -run TestClipIsGenerated -update-clip
// rewrites it.
func TestClipIsGenerated(t *testing.T) {
	want := makeClip()
	if *updateClip {
		if err := os.MkdirAll(filepath.Dir(clipFile), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(clipFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(clipFile)
	if err != nil {
		t.Fatalf("%v (run with -update-clip to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s (%d bytes) differs from the generator's output (%d bytes); run with -update-clip", clipFile, len(got), len(want))
	}
	if !bytes.Equal(got[4:12], []byte("ftypmp42")) {
		t.Fatalf("major brand: got %q, want ftyp mp42", got[4:12])
	}
}

// rgbToYUV is BT.601 limited range, the decoder's default for SD video
// without colour information.
func rgbToYUV(c [3]uint8) (y, u, v uint8) {
	r, g, b := float64(c[0]), float64(c[1]), float64(c[2])
	yf := 16 + (65.481*r+128.553*g+24.966*b)/255
	uf := 128 + (-37.797*r-74.203*g+112.0*b)/255
	vf := 128 + (112.0*r-93.786*g-18.214*b)/255
	return uint8(yf + 0.5), uint8(uf + 0.5), uint8(vf + 0.5)
}

// makeClip returns the MP4 file.
func makeClip() []byte {
	sps, pps := clipSPS(), clipPPS()
	var samples [][]byte
	var sync []uint32
	const frames = clipFPS * clipSeconds
	for i := 0; i < frames; i++ {
		n := i % clipFPS // frame_num within the second's GOP
		var nal []byte
		if n == 0 {
			sync = append(sync, uint32(i+1))
			nal = idrSlice(clipColors[i/clipFPS], i/clipFPS)
		} else {
			nal = skipSlice(n)
		}
		samples = append(samples, lengthPrefixed(nal))
	}
	return mp4(sps, pps, samples, sync)
}

// bitWriter writes the H.264 RBSP syntax: fixed-width fields and
// Exp-Golomb codes.
type bitWriter struct {
	buf  []byte
	cur  byte
	nbit uint
}

func (w *bitWriter) bit(b uint) {
	w.cur = w.cur<<1 | byte(b&1)
	w.nbit++
	if w.nbit == 8 {
		w.buf = append(w.buf, w.cur)
		w.cur, w.nbit = 0, 0
	}
}

func (w *bitWriter) bits(v uint64, n int) {
	for i := n - 1; i >= 0; i-- {
		w.bit(uint(v>>uint(i)) & 1)
	}
}

// ue writes an unsigned Exp-Golomb code.
func (w *bitWriter) ue(v uint64) {
	v++
	n := 0
	for x := v; x > 1; x >>= 1 {
		n++
	}
	w.bits(0, n)
	w.bits(v, n+1)
}

// se writes a signed Exp-Golomb code.
func (w *bitWriter) se(v int64) {
	if v <= 0 {
		w.ue(uint64(-2 * v))
	} else {
		w.ue(uint64(2*v - 1))
	}
}

func (w *bitWriter) aligned() bool { return w.nbit == 0 }

// trailing writes rbsp_trailing_bits and returns the RBSP.
func (w *bitWriter) trailing() []byte {
	w.bit(1)
	for !w.aligned() {
		w.bit(0)
	}
	return w.buf
}

// nal wraps an RBSP as a NAL unit with emulation prevention.
func nal(refIdc, typ byte, rbsp []byte) []byte {
	out := []byte{refIdc<<5 | typ}
	zeros := 0
	for _, b := range rbsp {
		if zeros >= 2 && b <= 3 {
			out = append(out, 3)
			zeros = 0
		}
		out = append(out, b)
		if b == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	return out
}

const (
	profileBaseline = 66
	constraintFlags = 0xC0 // constraint_set0 and set1: Constrained Baseline
	levelIdc        = 30
	log2MaxFrameNum = 4
)

func clipSPS() []byte {
	var w bitWriter
	w.bits(profileBaseline, 8)
	w.bits(constraintFlags, 8)
	w.bits(levelIdc, 8)
	w.ue(0)                   // seq_parameter_set_id
	w.ue(log2MaxFrameNum - 4) // log2_max_frame_num_minus4
	w.ue(2)                   // pic_order_cnt_type: from frame_num (no B frames)
	w.ue(1)                   // max_num_ref_frames
	w.bit(0)                  // gaps_in_frame_num_value_allowed_flag
	w.ue(clipWidth/16 - 1)    // pic_width_in_mbs_minus1
	w.ue(clipHeight/16 - 1)   // pic_height_in_map_units_minus1
	w.bit(1)                  // frame_mbs_only_flag
	w.bit(1)                  // direct_8x8_inference_flag
	w.bit(0)                  // frame_cropping_flag
	w.bit(0)                  // vui_parameters_present_flag
	return nal(3, 7, w.trailing())
}

func clipPPS() []byte {
	var w bitWriter
	w.ue(0)      // pic_parameter_set_id
	w.ue(0)      // seq_parameter_set_id
	w.bit(0)     // entropy_coding_mode_flag: CAVLC
	w.bit(0)     // bottom_field_pic_order_in_frame_present_flag
	w.ue(0)      // num_slice_groups_minus1
	w.ue(0)      // num_ref_idx_l0_default_active_minus1
	w.ue(0)      // num_ref_idx_l1_default_active_minus1
	w.bit(0)     // weighted_pred_flag
	w.bits(0, 2) // weighted_bipred_idc
	w.se(0)      // pic_init_qp_minus26
	w.se(0)      // pic_init_qs_minus26
	w.se(0)      // chroma_qp_index_offset
	w.bit(1)     // deblocking_filter_control_present_flag
	w.bit(0)     // constrained_intra_pred_flag
	w.bit(0)     // redundant_pic_cnt_present_flag
	return nal(3, 8, w.trailing())
}

// idrSlice is a key frame of one solid color, every macroblock I_PCM.
func idrSlice(c [3]uint8, idrID int) []byte {
	y, u, v := rgbToYUV(c)
	var w bitWriter
	w.ue(0)                     // first_mb_in_slice
	w.ue(7)                     // slice_type: I (all slices)
	w.ue(0)                     // pic_parameter_set_id
	w.bits(0, log2MaxFrameNum)  // frame_num
	w.ue(uint64(idrID % 65536)) // idr_pic_id
	w.bit(0)                    // no_output_of_prior_pics_flag
	w.bit(0)                    // long_term_reference_flag
	w.se(0)                     // slice_qp_delta
	w.ue(1)                     // disable_deblocking_filter_idc: off
	for mb := 0; mb < (clipWidth/16)*(clipHeight/16); mb++ {
		w.ue(25) // mb_type: I_PCM
		for !w.aligned() {
			w.bit(0) // pcm_alignment_zero_bit
		}
		for range 256 {
			w.bits(uint64(y), 8)
		}
		for range 64 {
			w.bits(uint64(u), 8)
		}
		for range 64 {
			w.bits(uint64(v), 8)
		}
	}
	return nal(3, 5, w.trailing())
}

// skipSlice is a P frame that repeats the previous one: one skip run over
// every macroblock.
func skipSlice(frameNum int) []byte {
	var w bitWriter
	w.ue(0)                                            // first_mb_in_slice
	w.ue(5)                                            // slice_type: P (all slices)
	w.ue(0)                                            // pic_parameter_set_id
	w.bits(uint64(frameNum), log2MaxFrameNum)          // frame_num
	w.bit(0)                                           // num_ref_idx_active_override_flag
	w.bit(0)                                           // ref_pic_list_modification_flag_l0
	w.bit(0)                                           // adaptive_ref_pic_marking_mode_flag
	w.se(0)                                            // slice_qp_delta
	w.ue(1)                                            // disable_deblocking_filter_idc: off
	w.ue(uint64((clipWidth / 16) * (clipHeight / 16))) // mb_skip_run: all
	return nal(2, 1, w.trailing())
}

func lengthPrefixed(nal []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(nal))), nal...)
}

// box is an ISO BMFF box: size, type, payload.
func box(typ string, parts ...[]byte) []byte {
	n := 8
	for _, p := range parts {
		n += len(p)
	}
	b := binary.BigEndian.AppendUint32(make([]byte, 0, n), uint32(n))
	b = append(b, typ...)
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// fullBox is a box with a version and flags.
func fullBox(typ string, version byte, flags uint32, parts ...[]byte) []byte {
	vf := binary.BigEndian.AppendUint32(nil, uint32(version)<<24|flags)
	return box(typ, append([][]byte{vf}, parts...)...)
}

func u16(v ...uint16) []byte {
	var b []byte
	for _, x := range v {
		b = binary.BigEndian.AppendUint16(b, x)
	}
	return b
}

func u32(v ...uint32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.BigEndian.AppendUint32(b, x)
	}
	return b
}

// unityMatrix is the identity transformation matrix of mvhd and tkhd.
var unityMatrix = u32(0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000)

const (
	movieTimescale = 1000
	sampleDelta    = movieTimescale / clipFPS
)

// mp4 lays out ftyp, moov, mdat (moov first, as for progressive playback).
func mp4(sps, pps []byte, samples [][]byte, sync []uint32) []byte {
	ftyp := box("ftyp", []byte("mp42"), u32(0), []byte("isommp42avc1"))
	duration := uint32(len(samples) * sampleDelta)
	var mdatLen int
	sizes := u32(0, uint32(len(samples))) // sample_size 0: sizes follow
	for _, s := range samples {
		mdatLen += len(s)
		sizes = append(sizes, u32(uint32(len(s)))...)
	}
	moov := func(chunkOffset uint32) []byte {
		avcC := box("avcC",
			[]byte{1, profileBaseline, constraintFlags, levelIdc, 0xFF, 0xE1},
			u16(uint16(len(sps))), sps,
			[]byte{1}, u16(uint16(len(pps))), pps)
		avc1 := box("avc1",
			make([]byte, 6), u16(1), // reserved, data_reference_index
			make([]byte, 16), // pre_defined, reserved
			u16(clipWidth, clipHeight),
			u32(0x00480000, 0x00480000, 0), // 72 dpi, reserved
			u16(1),                         // frame_count
			make([]byte, 32),               // compressorname
			u16(0x0018, 0xFFFF),            // depth, pre_defined
			avcC)
		stbl := box("stbl",
			fullBox("stsd", 0, 0, u32(1), avc1),
			fullBox("stts", 0, 0, u32(1, uint32(len(samples)), sampleDelta)),
			fullBox("stss", 0, 0, u32(uint32(len(sync))), u32(sync...)),
			fullBox("stsc", 0, 0, u32(1, 1, uint32(len(samples)), 1)),
			fullBox("stsz", 0, 0, sizes),
			fullBox("stco", 0, 0, u32(1, chunkOffset)))
		minf := box("minf",
			fullBox("vmhd", 0, 1, u16(0, 0, 0, 0)),
			box("dinf", fullBox("dref", 0, 0, u32(1), fullBox("url ", 0, 1))),
			stbl)
		mdia := box("mdia",
			fullBox("mdhd", 0, 0, u32(0, 0, movieTimescale, duration), u16(0x55C4, 0)), // language "und"
			fullBox("hdlr", 0, 0, u32(0), []byte("vide"), u32(0, 0, 0), []byte("VideoHandler\x00")),
			minf)
		trak := box("trak",
			fullBox("tkhd", 0, 3, u32(0, 0, 1, 0, duration, 0, 0), u16(0, 0, 0, 0), unityMatrix,
				u32(clipWidth<<16, clipHeight<<16)),
			mdia)
		return box("moov",
			fullBox("mvhd", 0, 0, u32(0, 0, movieTimescale, duration, 0x00010000), u16(0x0100, 0), u32(0, 0),
				unityMatrix, make([]byte, 24), u32(2)),
			trak)
	}
	head := len(ftyp) + len(moov(0)) + 8 // the offset does not change moov's size
	out := append(ftyp, moov(uint32(head))...)
	out = binary.BigEndian.AppendUint32(out, uint32(8+mdatLen))
	out = append(out, "mdat"...)
	for _, s := range samples {
		out = append(out, s...)
	}
	return out
}
