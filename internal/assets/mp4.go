package assets

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/Eyevinn/mp4ff/avc"
	"github.com/Eyevinn/mp4ff/bits"
	"github.com/Eyevinn/mp4ff/mp4"
)

// maxFtypSize and maxMoofSize bound the small boxes read whole.
const (
	maxDim      = 1 << 16 // no codec here codes a wider or taller picture
	maxFtypSize = 4 << 10
	maxMoofSize = 4 << 20
)

// boxLayout is what the top-level box walk finds: where ftyp, moov and the
// first mdat sit, without reading any media data.
type boxLayout struct {
	ftyp             []byte // body of ftyp
	moovOff, moovLen int64  // moovLen 0: none
	mdatOff          int64  // first mdat; -1: none
	moofs            []int64
	moofLens         []int64
}

// walkBoxes reads top-level box headers only (8 or 16 bytes each), jumping
// over every body by its size, so a large mdat costs nothing. It stops after
// ftyp and moov are found unless the file is fragmented and its duration
// needs the moofs (needMoofs returns true), and after MaxBoxes boxes.
func (c *Checker) walkBoxes(o *objReader, needMoofs func(moov []byte, off int64) bool) (*boxLayout, []byte, error) {
	l := &boxLayout{mdatOff: -1}
	var moov []byte
	off := int64(0)
	for i := 0; off < o.size; i++ {
		if i >= c.cfg.MaxBoxes {
			return nil, nil, fmt.Errorf("more than %d top-level boxes", c.cfg.MaxBoxes)
		}
		if o.size-off < 8 {
			break // trailing garbage shorter than a box header
		}
		h, err := o.at(off, 8)
		if err != nil {
			return nil, nil, err
		}
		size := int64(binary.BigEndian.Uint32(h[0:4]))
		typ := string(h[4:8])
		hdr := int64(8)
		switch size {
		case 0: // to the end of the file (ISO/IEC 14496-12, 4.2)
			size = o.size - off
		case 1:
			h16, err := o.at(off, 16)
			if err != nil {
				return nil, nil, err
			}
			u := binary.BigEndian.Uint64(h16[8:16])
			if u > uint64(o.size) {
				return nil, nil, fmt.Errorf("box %q at %d runs past the end of the file", printable(typ), off)
			}
			size, hdr = int64(u), 16
		}
		if size < hdr {
			return nil, nil, fmt.Errorf("box %q at %d has a size smaller than its header", printable(typ), off)
		}
		if size > o.size-off {
			if typ == "mdat" && l.moovLen > 0 {
				// A truncated last mdat after a complete moov: playable up to the cut.
				if l.mdatOff < 0 {
					l.mdatOff = off
				}
				break
			}
			return nil, nil, fmt.Errorf("box %q at %d runs past the end of the file (truncated upload?)", printable(typ), off)
		}
		switch typ {
		case "ftyp":
			if l.ftyp == nil {
				if size > maxFtypSize {
					return nil, nil, errors.New("ftyp box too large")
				}
				b, err := o.at(off+hdr, size-hdr)
				if err != nil {
					return nil, nil, err
				}
				l.ftyp = append([]byte{}, b...)
			}
		case "moov":
			if l.moovLen == 0 {
				if size > c.cfg.MaxMoovSize {
					return nil, nil, fmt.Errorf("moov box of %d bytes is larger than max_moov_size", size)
				}
				b, err := o.at(off, size)
				if err != nil {
					return nil, nil, err
				}
				moov = append([]byte{}, b...)
				l.moovOff, l.moovLen = off, size
				if !needMoofs(moov, off) {
					return l, moov, nil
				}
			}
		case "mdat":
			if l.mdatOff < 0 {
				l.mdatOff = off
			}
		case "moof":
			if size > maxMoofSize {
				return nil, nil, errors.New("moof box too large")
			}
			l.moofs = append(l.moofs, off)
			l.moofLens = append(l.moofLens, size)
		}
		off += size
	}
	return l, moov, nil
}

// printable keeps a box type from hostile bytes fit for a message.
func printable(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return strconv.QuoteToASCII(s)
		}
	}
	return s
}

// decodeMoov decodes one moov box with mp4ff; a panic inside the library on
// hostile bytes becomes an error.
func decodeMoov(b []byte, off int64) (moov *mp4.MoovBox, err error) {
	defer func() {
		if r := recover(); r != nil {
			moov, err = nil, errors.New("moov box is malformed")
		}
	}()
	box, err := mp4.DecodeBoxSR(uint64(off), bits.NewFixedSliceReader(b))
	if err != nil {
		return nil, err
	}
	m, ok := box.(*mp4.MoovBox)
	if !ok {
		return nil, errors.New("not a moov box")
	}
	return m, nil
}

// decodeMoof decodes one moof box with mp4ff, like decodeMoov.
func decodeMoof(b []byte, off int64) (moof *mp4.MoofBox, err error) {
	defer func() {
		if r := recover(); r != nil {
			moof, err = nil, errors.New("moof box is malformed")
		}
	}()
	box, err := mp4.DecodeBoxSR(uint64(off), bits.NewFixedSliceReader(b))
	if err != nil {
		return nil, err
	}
	m, ok := box.(*mp4.MoofBox)
	if !ok {
		return nil, errors.New("not a moof box")
	}
	return m, nil
}

// isoType names an ISO base media file by its major brand.
func isoType(brand string) string {
	switch brand {
	case "qt  ":
		return "video/quicktime"
	case "M4A ", "M4B ", "M4P ", "F4A ":
		return "audio/mp4"
	case "avif", "avis":
		return "image/avif"
	case "heic", "heix", "heim", "heis", "hevc", "hevx":
		return "image/heic"
	case "mif1", "msf1":
		return "image/heif"
	case "3gp4", "3gp5", "3gp6", "3gp7", "3ge6", "3ge7", "3gg6":
		return "video/3gpp"
	}
	return typeMP4
}

// checkMP4 fills the video facts from ftyp and moov.
func (c *Checker) checkMP4(o *objReader, ck *Check) error {
	// A fragmented moov (with mvex) whose duration is not in mehd needs the
	// moofs walked to sum its sample durations; any other stops the walk.
	var moov *mp4.MoovBox
	var moovErr error
	l, _, err := c.walkBoxes(o, func(b []byte, off int64) bool {
		moov, moovErr = decodeMoov(b, off)
		if moovErr != nil || moov.Mvex == nil {
			return false
		}
		return moov.Mvex.Mehd == nil || moov.Mvex.Mehd.FragmentDuration <= 0
	})
	if err != nil {
		return err
	}
	v := &Video{}
	if len(l.ftyp) >= 4 {
		v.Brand = string(l.ftyp[0:4])
	}
	if t := isoType(v.Brand); ck.Type == typeMP4 {
		ck.Type = t
	}
	switch ck.Type {
	case "image/avif", "image/heic", "image/heif", "audio/mp4":
		return nil // still images in HEIF boxes and audio: type only
	}
	ck.Video = v
	if l.moovLen == 0 {
		return errors.New("no moov box (the file's index) anywhere in the file")
	}
	v.Faststart = l.mdatOff < 0 || l.moovOff < l.mdatOff
	if moovErr != nil {
		return moovErr
	}
	v.Fragmented = moov.Mvex != nil
	var trak *mp4.TrakBox
	for _, t := range moov.Traks {
		if t.Mdia != nil && t.Mdia.Hdlr != nil && t.Mdia.Hdlr.HandlerType == "vide" {
			trak = t
			break
		}
	}
	if moov.Mvhd != nil && moov.Mvhd.Timescale > 0 {
		v.DurationS = float64(moov.Mvhd.Duration) / float64(moov.Mvhd.Timescale)
		if v.Fragmented && moov.Mvex.Mehd != nil && moov.Mvex.Mehd.FragmentDuration > 0 {
			v.DurationS = float64(moov.Mvex.Mehd.FragmentDuration) / float64(moov.Mvhd.Timescale)
		}
	}
	if trak == nil {
		return nil // no video track: codec stays empty, reported by problems
	}
	if v.Fragmented && v.DurationS == 0 {
		d, err := c.fragmentDuration(o, l, moov, trak)
		if err != nil {
			return err
		}
		v.DurationS = d
	}
	return videoFacts(trak, v, ck)
}

// fragmentDuration sums the video track's sample durations over every moof.
func (c *Checker) fragmentDuration(o *objReader, l *boxLayout, moov *mp4.MoovBox, trak *mp4.TrakBox) (float64, error) {
	if trak.Tkhd == nil || trak.Mdia.Mdhd == nil || trak.Mdia.Mdhd.Timescale == 0 {
		return 0, nil
	}
	id := trak.Tkhd.TrackID
	var trexDur uint32
	for _, t := range moov.Mvex.Trexs {
		if t.TrackID == id {
			trexDur = t.DefaultSampleDuration
		}
	}
	var total uint64
	for i, off := range l.moofs {
		b, err := o.at(off, l.moofLens[i])
		if err != nil {
			return 0, err
		}
		moof, err := decodeMoof(b, off)
		if err != nil {
			return 0, err
		}
		for _, traf := range moof.Trafs {
			if traf.Tfhd == nil || traf.Tfhd.TrackID != id {
				continue
			}
			def := trexDur
			if traf.Tfhd.HasDefaultSampleDuration() {
				def = traf.Tfhd.DefaultSampleDuration
			}
			for _, tr := range traf.Truns {
				total += tr.Duration(def)
			}
		}
	}
	return float64(total) / float64(trak.Mdia.Mdhd.Timescale), nil
}

// videoFacts reads codec, dimensions and pixel format from the first sample
// entry of the video track: the SPS for H.264 (chroma_format_idc and bit
// depth only exist there), the decoder configuration for the others.
func videoFacts(trak *mp4.TrakBox, v *Video, ck *Check) error {
	if trak.Mdia.Minf == nil || trak.Mdia.Minf.Stbl == nil || trak.Mdia.Minf.Stbl.Stsd == nil {
		return errors.New("video track has no sample description")
	}
	stsd := trak.Mdia.Minf.Stbl.Stsd
	var vse *mp4.VisualSampleEntryBox
	for _, b := range stsd.Children {
		if e, ok := b.(*mp4.VisualSampleEntryBox); ok {
			vse = e
			break
		}
	}
	if vse == nil {
		if len(stsd.Children) > 0 {
			v.Codec = printable(stsd.Children[0].Type())
		}
		return nil
	}
	v.Codec = printable(vse.Type())
	if v.Codec == "encv" && vse.Sinf != nil && vse.Sinf.Frma != nil {
		v.Codec = printable(vse.Sinf.Frma.DataFormat)
	}
	ck.Width, ck.Height = int(vse.Width), int(vse.Height)
	switch {
	case vse.AvcC != nil:
		if len(vse.AvcC.SPSnalus) == 0 {
			return errors.New("H.264 track has no SPS")
		}
		sps, err := parseAVCSPS(vse.AvcC.SPSnalus[0])
		if err != nil {
			return fmt.Errorf("H.264 SPS: %w", err)
		}
		if sps.Width == 0 || sps.Height == 0 || sps.Width > maxDim || sps.Height > maxDim {
			return errors.New("H.264 SPS has an impossible picture size")
		}
		ck.Width, ck.Height = int(sps.Width), int(sps.Height)
		v.PixFmt = pixFmt(int(sps.ChromaFormatIDC), 8+int(sps.BitDepthLumaMinus8), false, false)
		v.profile = sps.Profile
	case vse.HvcC != nil:
		// The sample entry's size, not the SPS's: mp4ff's HEVC SPS parser
		// walks the VUI and HRD, whose counts hostile bytes control.
		r := vse.HvcC.DecConfRec
		v.PixFmt = pixFmt(int(r.ChromaFormatIDC), 8+int(r.BitDepthLumaMinus8), false, false)
	case vse.Av1C != nil:
		r := vse.Av1C.CodecConfRec
		depth := 8
		if r.HighBitdepth == 1 {
			depth = 10
			if r.TwelveBit == 1 {
				depth = 12
			}
		}
		chroma := 3
		switch {
		case r.MonoChrome == 1:
			chroma = 0
		case r.ChromaSubsamplingX == 1 && r.ChromaSubsamplingY == 1:
			chroma = 1
		case r.ChromaSubsamplingX == 1:
			chroma = 2
		}
		v.PixFmt = pixFmt(chroma, depth, false, false)
	case vse.VppC != nil:
		chroma := 1
		switch vse.VppC.ChromaSubsampling {
		case 2:
			chroma = 2
		case 3:
			chroma = 3
		}
		v.PixFmt = pixFmt(chroma, int(vse.VppC.BitDepth), false, false)
	}
	return nil
}

// parseAVCSPS parses an H.264 SPS up to the VUI's aspect ratio, not beyond:
// past it, mp4ff v0.56.0 loops cpb_cnt_minus1+1 times (a ue(v) hostile bytes
// set to 2^32-2; H.264 7.4.2.1.1 caps it at 31) appending to a slice, which
// a fuzzed SPS turned into a hang. The cost: video_full_range_flag is not
// read, so full-range 4:2:0 is "yuv420p" where ffprobe says "yuvj420p"
// (the same layout; ffmpeg deprecated the yuvj names).
func parseAVCSPS(nalu []byte) (sps *avc.SPS, err error) {
	defer func() {
		if r := recover(); r != nil {
			sps, err = nil, errors.New("malformed")
		}
	}()
	return avc.ParseSPSNALUnit(nalu, false)
}

// pixFmt names a pixel format as ffmpeg does (libavutil/pixdesc.c): gray,
// yuv420p, yuv422p, yuv444p, gbrp, with "10le" etc. past 8 bits. Like
// ffmpeg's H.264 decoder, 8-bit full-range YUV is "yuvj…".
func pixFmt(chroma, depth int, fullRange, rgb bool) string {
	var base string
	switch chroma {
	case 0:
		base = "gray"
		if depth > 8 {
			return base + strconv.Itoa(depth) + "le"
		}
		return base
	case 1:
		base = "yuv420p"
	case 2:
		base = "yuv422p"
	case 3:
		base = "yuv444p"
		if rgb {
			base = "gbrp"
		}
	default:
		return ""
	}
	if depth > 8 {
		return base + strconv.Itoa(depth) + "le"
	}
	if depth < 8 {
		return ""
	}
	if fullRange && base != "gbrp" {
		return "yuvj" + base[3:]
	}
	return base
}
