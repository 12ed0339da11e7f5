package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPlotFormat(t *testing.T) {
	for file, want := range map[string]string{"a.svg": "svg", "/tmp/B.PNG": "png"} {
		if f, err := plotFormat(file); err != nil || f != want {
			t.Errorf("plotFormat(%q) = %q, %v; want %q", file, f, err, want)
		}
	}
	for _, bad := range []string{"a.pdf", "svg", "a.svg.txt", ""} {
		if _, err := plotFormat(bad); err == nil {
			t.Errorf("plotFormat(%q): no error", bad)
		}
	}
}

// TestWritePlot writes the rules case's charts and the paced runs'
// charts as SVG and PNG and checks that each file is one of its kind.
func TestWritePlot(t *testing.T) {
	paths := []string{"kernel router", "xdpfwd router"}
	run := func(path string, sent, delivered uint64, cpu time.Duration) benchResult {
		return benchResult{path: path, sent: sent, delivered: delivered, elapsed: time.Second, cpu: cpu}
	}
	counts := []int{0, 100, 1000, 10000}
	var results [][]benchResult
	for i := range counts {
		results = append(results, []benchResult{
			run(paths[0], 500_000, 450_000-uint64(i)*100_000, time.Second),
			run(paths[1], 700_000, 650_000, 1800*time.Millisecond),
		})
	}
	var paced []benchResult
	for _, pc := range []uint64{10, 25, 50, 90, 100} {
		paced = append(paced, run(paths[0], pc*4500, pc*4500, 1200*time.Millisecond), run(paths[1], pc*6500, pc*6500, 2*time.Second))
	}
	dir := t.TempDir()
	for name, charts := range map[string][]chart{
		"rules": rulesCharts("routed, peak", paths, counts, results),
		// A path that failed its last count has fewer points.
		"partial": rulesCharts("routed, peak", paths, counts, append(results[:3:3], results[3][:1])),
		"paced":   loadCharts("routed", paths, paced),
	} {
		for _, ext := range []string{".svg", ".png"} {
			file := filepath.Join(dir, name+ext)
			if err := writePlot(file, charts); err != nil {
				t.Fatalf("%s%s: %v", name, ext, err)
			}
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			switch ext {
			case ".svg":
				s := string(data)
				if !strings.HasPrefix(s, "<?xml") || !strings.Contains(s, "<svg") || !strings.HasSuffix(strings.TrimSpace(s), "</svg>") || !strings.Contains(s, "xdpfwd router") {
					t.Errorf("%s: not an SVG with the legend (%d bytes): %.200q", file, len(data), s)
				}
			case ".png":
				if !bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")) || len(data) < 1000 {
					t.Errorf("%s: not a PNG (%d bytes): % x", file, len(data), data[:min(len(data), 16)])
				}
			}
		}
	}
	if err := writePlot(filepath.Join(dir, "x.svg"), rulesCharts("", paths, nil, nil)); err == nil {
		t.Error("writePlot with no runs: no error")
	}
	if err := writePlot(filepath.Join(dir, "x.pdf"), rulesCharts("", paths, counts, results)); err == nil {
		t.Error("writePlot to a .pdf: no error")
	}
}
