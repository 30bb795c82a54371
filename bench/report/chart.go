package report

import (
	"errors"
	"fmt"
	"image/color"
	"os"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Series is one line of the connection chart: a target's medians at each concurrency.
type Series struct {
	Name        string
	Concurrency []int
	ConnsPerSec []float64
	P99Millis   []float64
}

// palette gives each series a fixed colour so chain, direct and HAProxy keep theirs across runs.
var palette = []color.RGBA{
	{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
	{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
}

// Chart draws connections/s and p99 latency against concurrency, side by side, into a PNG file.
// It returns an error for empty or mismatched series rather than drawing a misleading chart.
// Calls writing different files may overlap.
func Chart(path, title string, series []Series) error {
	if len(series) == 0 {
		return errors.New("chart: no series")
	}
	rate, lat := plot.New(), plot.New()
	rate.Title.Text = title + ": new connections/s"
	rate.Y.Label.Text = "connections/s"
	lat.Title.Text = title + ": p99 latency"
	lat.Y.Label.Text = "ms (connect to response)"
	var ticks []plot.Tick
	seen := map[int]bool{}
	for i, s := range series {
		n := len(s.Concurrency)
		if n == 0 || len(s.ConnsPerSec) != n || len(s.P99Millis) != n {
			return fmt.Errorf("chart: series %q has %d concurrencies, %d rates, %d latencies", s.Name, n, len(s.ConnsPerSec), len(s.P99Millis))
		}
		rxy, lxy := make(plotter.XYs, n), make(plotter.XYs, n)
		for j, c := range s.Concurrency {
			if c < 1 {
				return fmt.Errorf("chart: series %q: concurrency %d", s.Name, c)
			}
			rxy[j] = plotter.XY{X: float64(c), Y: s.ConnsPerSec[j]}
			lxy[j] = plotter.XY{X: float64(c), Y: s.P99Millis[j]}
			if !seen[c] {
				seen[c] = true
				ticks = append(ticks, plot.Tick{Value: float64(c), Label: strconv.Itoa(c)})
			}
		}
		col := palette[i%len(palette)]
		for _, pair := range []struct {
			p   *plot.Plot
			xys plotter.XYs
		}{{rate, rxy}, {lat, lxy}} {
			line, points, err := plotter.NewLinePoints(pair.xys)
			if err != nil {
				return fmt.Errorf("chart: %s: %w", s.Name, err)
			}
			line.Color, points.Color = col, col
			line.Width = vg.Points(1.5)
			points.Shape = draw.CircleGlyph{}
			pair.p.Add(line, points)
			pair.p.Legend.Add(s.Name, line, points)
		}
	}
	for _, p := range []*plot.Plot{rate, lat} {
		p.X.Label.Text = "concurrency (log scale)"
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.ConstantTicks(ticks)
		p.Y.Min = 0
		p.Y.Tick.Marker = plainTicks{}
		p.Legend.Top = true
		p.Legend.Left = true
		p.Add(plotter.NewGrid())
	}
	img := vgimg.New(vg.Points(900), vg.Points(360))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Points(20), PadY: vg.Points(10), PadTop: vg.Points(6), PadBottom: vg.Points(6), PadLeft: vg.Points(6), PadRight: vg.Points(12)}
	canvases := plot.Align([][]*plot.Plot{{rate, lat}}, tiles, dc)
	rate.Draw(canvases[0][0])
	lat.Draw(canvases[0][1])
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// plainTicks are gonum's default ticks labelled without trailing zeros ("750", not "750.00").
type plainTicks struct{}

// Ticks implements plot.Ticker.
func (plainTicks) Ticks(min, max float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = strconv.FormatFloat(ticks[i].Value, 'f', -1, 64)
		}
	}
	return ticks
}
