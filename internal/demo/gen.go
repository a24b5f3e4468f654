//go:build ignore

// gen writes the demo's sample images: go run gen.go (in this directory).
package main

import (
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"os"
)

func main() {
	write := func(name string, img image.Image) {
		f, err := os.Create("images/" + name)
		if err != nil {
			panic(err)
		}
		defer f.Close()
		if name[len(name)-3:] == "png" {
			err = png.Encode(f, img)
		} else {
			err = jpeg.Encode(f, img, &jpeg.Options{Quality: 80})
		}
		if err != nil {
			panic(err)
		}
	}
	os.MkdirAll("images/cats", 0o755)
	grad := image.NewRGBA(image.Rect(0, 0, 320, 240))
	for y := 0; y < 240; y++ {
		for x := 0; x < 320; x++ {
			grad.Set(x, y, color.RGBA{uint8(x * 255 / 319), uint8(y * 255 / 239), 160, 255})
		}
	}
	write("gradient.png", grad)
	rings := image.NewRGBA(image.Rect(0, 0, 320, 240))
	for y := 0; y < 240; y++ {
		for x := 0; x < 320; x++ {
			d := math.Hypot(float64(x-160), float64(y-120))
			v := uint8(127 + 127*math.Sin(d/6))
			rings.Set(x, y, color.RGBA{v, 90, 255 - v, 255})
		}
	}
	write("cats/rings.jpg", rings)
	checks := image.NewRGBA(image.Rect(0, 0, 320, 240))
	for y := 0; y < 240; y++ {
		for x := 0; x < 320; x++ {
			c := color.RGBA{240, 240, 240, 255}
			if (x/20+y/20)%2 == 0 {
				c = color.RGBA{30, 110, 200, 255}
			}
			checks.Set(x, y, c)
		}
	}
	write("cats/checks (1).png", checks)
	// a solid 4x4 of known colour for pixel checks
	solid := image.NewRGBA(image.Rect(0, 0, 4, 4))
	for y := 0; y < 4; y++ {
		for x := 0; x < 4; x++ {
			solid.Set(x, y, color.RGBA{255, 0, 128, 255})
		}
	}
	write("solid.png", solid)
}
