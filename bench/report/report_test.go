package report

import (
	"bytes"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{7}, 7},
		{[]float64{math.NaN(), 5, 1}, 3},
	} {
		in := append([]float64(nil), c.in...)
		if got := Median(c.in); got != c.want {
			t.Errorf("Median(%v) = %v, want %v", c.in, got, c.want)
		}
		for i := range in {
			if !(in[i] == c.in[i] || math.IsNaN(in[i]) && math.IsNaN(c.in[i])) {
				t.Errorf("Median reordered its input: %v", c.in)
			}
		}
	}
	if !math.IsNaN(Median(nil)) || !math.IsNaN(Median([]float64{math.NaN()})) {
		t.Error("Median of nothing is not NaN")
	}
	if !math.IsNaN(Ratio(1, 0)) || Ratio(3, 4) != 0.75 {
		t.Error("Ratio")
	}
	if Num(math.NaN(), 1) != "–" || Num(1.25, 1) != "1.2" || Times(0.8) != "0.80×" {
		t.Errorf("formatting: %q %q %q", Num(math.NaN(), 1), Num(1.25, 1), Times(0.8))
	}
}

func TestTableMarkdown(t *testing.T) {
	tb := Table{
		Title:  "New connections",
		Header: []string{"target", "conns/s", "verdict"},
		Rows:   [][]string{{"chain", "812", "met"}, {"direct|x", "1120", "missed"}, {"short"}},
		Notes:  []string{"medians of 5 runs"},
	}
	got := tb.Markdown()
	want := "### New connections\n\n" +
		"| target    | conns/s | verdict |\n" +
		"| --------- | ------: | ------- |\n" +
		"| chain     |     812 | met     |\n" +
		"| direct\\|x |    1120 | missed  |\n" +
		"| short     |         |         |\n" +
		"\nmedians of 5 runs\n"
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestChartWritesPNG(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chart.png")
	err := Chart(path, "test", []Series{
		{Name: "chain", Concurrency: []int{1, 25, 100}, ConnsPerSec: []float64{300, 800, 850}, P99Millis: []float64{4, 40, 160}},
		{Name: "direct", Concurrency: []int{1, 25, 100}, ConnsPerSec: []float64{500, 1100, 1100}, P99Millis: []float64{2, 30, 120}},
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if r := img.Bounds(); r.Dx() < 600 || r.Dy() < 200 {
		t.Fatalf("image %v too small", r)
	}
	for name, s := range map[string][]Series{
		"none":       nil,
		"mismatched": {{Name: "x", Concurrency: []int{1, 2}, ConnsPerSec: []float64{1}, P99Millis: []float64{1, 2}}},
		"zero conc":  {{Name: "x", Concurrency: []int{0}, ConnsPerSec: []float64{1}, P99Millis: []float64{1}}},
	} {
		if err := Chart(filepath.Join(t.TempDir(), "bad.png"), "t", s); err == nil || !strings.Contains(err.Error(), "chart") {
			t.Errorf("%s: err %v", name, err)
		}
	}
}
