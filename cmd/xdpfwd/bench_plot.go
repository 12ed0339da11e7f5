package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// plotFormat is the image format of --plot FILE, from its extension:
// "svg" or "png".
func plotFormat(file string) (string, error) {
	switch ext := strings.ToLower(filepath.Ext(file)); ext {
	case ".svg", ".png":
		return ext[1:], nil
	default:
		return "", fmt.Errorf("--plot %q: the file must end in .svg or .png", file)
	}
}

// series is one line of a chart: one path's points, in drawing order.
type series struct {
	name   string
	xs, ys []float64
}

// chart is one panel of a plot file.
type chart struct {
	title, xLabel, yLabel string
	// xTicks, when set, are the only ticks of the x axis, with their
	// labels: a categorical axis (the rule counts).
	xTicks []plot.Tick
	series []series
}

// writePlot draws charts side by side, into file as SVG or PNG (by its
// extension).
func writePlot(file string, charts []chart) (err error) {
	format, err := plotFormat(file)
	if err != nil {
		return err
	}
	points := 0
	for _, c := range charts {
		for _, s := range c.series {
			points += len(s.xs)
		}
	}
	if points == 0 {
		return errors.New("plot: no run to draw")
	}
	plots := make([]*plot.Plot, len(charts))
	for i, c := range charts {
		if plots[i], err = c.plot(); err != nil {
			return fmt.Errorf("plot %q: %w", c.title, err)
		}
	}
	w, h := vg.Length(len(charts))*5*vg.Inch, 4*vg.Inch
	var canvas interface {
		vg.CanvasSizer
		io.WriterTo
	}
	switch format {
	case "svg":
		canvas = vgsvg.New(w, h)
	default:
		canvas = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(120))}
	}
	tiles := draw.Tiles{Rows: 1, Cols: len(charts), PadX: vg.Inch / 4, PadTop: vg.Inch / 8, PadBottom: vg.Inch / 8, PadLeft: vg.Inch / 8, PadRight: vg.Inch / 8}
	cells := plot.Align([][]*plot.Plot{plots}, tiles, draw.New(canvas))
	for i, p := range plots {
		p.Draw(cells[0][i])
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, f.Close()) }()
	if _, err := canvas.WriteTo(f); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	return nil
}

// plot makes c's gonum plot: a line with points per series, a legend, a
// grid, and a y axis from 0.
func (c chart) plot() (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = c.title
	p.X.Label.Text, p.Y.Label.Text = c.xLabel, c.yLabel
	p.Add(plotter.NewGrid())
	for i, s := range c.series {
		if len(s.xs) == 0 {
			continue
		}
		xys := make(plotter.XYs, len(s.xs))
		for k := range s.xs {
			xys[k] = plotter.XY{X: s.xs[k], Y: s.ys[k]}
		}
		line, points, err := plotter.NewLinePoints(xys)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		line.Color, line.Width = plotutil.Color(i), vg.Points(1.5)
		points.Color, points.Shape = plotutil.Color(i), plotutil.Shape(i)
		p.Add(line, points)
		p.Legend.Add(s.name, line, points)
	}
	p.Legend.Top, p.Legend.Left = true, true
	p.Y.Min = 0
	p.Y.Max *= 1.3 // room for the legend above the lines
	p.Y.Tick.Marker = plainTicks{}
	if c.xTicks != nil {
		p.X.Tick.Marker = plot.ConstantTicks(c.xTicks)
		// Half a category of margin on both sides.
		p.X.Min, p.X.Max = c.xTicks[0].Value-0.5, c.xTicks[len(c.xTicks)-1].Value+0.5
	}
	return p, nil
}

// rulesCharts are the rules case's two panels, delivered pps and CPU per
// packet against the filler rule count, one series per path. results[i]
// are the paths' runs with counts[i] rules, in the order of paths. The x
// axis is categorical: the counts are evenly spaced whatever their
// values (0 has no place on a log scale).
func rulesCharts(subtitle string, paths []string, counts []int, results [][]benchResult) []chart {
	ticks := make([]plot.Tick, len(results))
	for i := range results {
		ticks[i] = plot.Tick{Value: float64(i), Label: strconv.Itoa(counts[i])}
	}
	pps := chart{title: "delivered, " + subtitle, xLabel: "forward-chain rules before the matching one", yLabel: "delivered kpps", xTicks: ticks}
	cpu := chart{title: "CPU per packet, " + subtitle, xLabel: pps.xLabel, yLabel: "CPU ns per delivered packet (all cores)", xTicks: ticks}
	for k, path := range paths {
		sp, sc := series{name: path}, series{name: path}
		for i, rs := range results {
			if k >= len(rs) {
				continue
			}
			sp.xs, sp.ys = append(sp.xs, float64(i)), append(sp.ys, rs[k].deliveredPPS()/1e3)
			sc.xs, sc.ys = append(sc.xs, float64(i)), append(sc.ys, rs[k].cpuPerMillion())
		}
		pps.series, cpu.series = append(pps.series, sp), append(cpu.series, sc)
	}
	return []chart{pps, cpu}
}

// loadCharts are the other cases' two panels: delivered pps and CPU per
// packet against the offered load, from every run (peak and paced), one
// series per path.
func loadCharts(subtitle string, paths []string, runs []benchResult) []chart {
	pps := chart{title: "delivered, " + subtitle, xLabel: "offered kpps", yLabel: "delivered kpps"}
	cpu := chart{title: "CPU per packet, " + subtitle, xLabel: "offered kpps", yLabel: "CPU ns per delivered packet (all cores)"}
	for _, path := range paths {
		var rs []benchResult
		for _, r := range runs {
			if r.path == path {
				rs = append(rs, r)
			}
		}
		slices.SortFunc(rs, func(a, b benchResult) int { return cmp.Compare(a.offeredPPS(), b.offeredPPS()) })
		sp, sc := series{name: path}, series{name: path}
		for _, r := range rs {
			sp.xs, sp.ys = append(sp.xs, r.offeredPPS()/1e3), append(sp.ys, r.deliveredPPS()/1e3)
			sc.xs, sc.ys = append(sc.xs, r.offeredPPS()/1e3), append(sc.ys, r.cpuPerMillion())
		}
		pps.series, cpu.series = append(pps.series, sp), append(cpu.series, sc)
	}
	return []chart{pps, cpu}
}

// plainTicks are plot.DefaultTicks labelled without trailing zeros.
type plainTicks struct{}

// Ticks implements plot.Ticker.
func (plainTicks) Ticks(lo, hi float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(lo, hi)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = strconv.FormatFloat(ts[i].Value, 'f', -1, 64)
		}
	}
	return ts
}
