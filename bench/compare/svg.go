package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"slices"
	"strings"
)

// chart is one line chart of a measure against N: a line per tool, N on a
// log scale, y linear or logarithmic. Written as SVG by hand, so that the
// harness needs nothing beyond the standard library.
type chart struct {
	Title  string
	YLabel string
	LogY   bool
	Ns     []int
	Series []series
}

// series is one tool's line.
type series struct {
	Name   string
	Points []point
}

// point is one tool's value at one N; a point with a Note was not
// measured, and the note says why ("did not finish in 240 s").
type point struct {
	N    int
	V    float64
	Note string
}

var toolColors = map[string]string{
	"floor":       "#7f7f7f",
	"solo":        "#1f77b4",
	"supervisord": "#d62728",
	"pm2":         "#2ca02c",
}

var otherColors = []string{"#9467bd", "#8c564b", "#e377c2", "#17becf"}

const (
	svgW, svgH           = 760, 440
	padL, padR           = 80, 210
	padT, padB           = 50, 60
	plotW, plotH         = svgW - padL - padR, svgH - padT - padB
	legendX              = svgW - padR + 20
	pointRadius  float64 = 4
)

// startChart is the time until all N services are in /proc, per tool.
func startChart(rep Report, tools []string) chart {
	return reportChart(rep, tools, "Start: seconds until all N services run (in /proc)", "seconds (log scale)", true, "start",
		func(r Run) (float64, bool) { return r.ProcSeconds, r.ProcSeconds > 0 })
}

// memoryChart is the marginal RSS per service, per tool.
func memoryChart(rep Report, tools []string) chart {
	return reportChart(rep, tools, "Memory: the supervisor's marginal RSS per service", "KiB per service", false, "status",
		func(r Run) (float64, bool) { return r.MarginalKiB, r.RSSKiB > 0 })
}

func reportChart(rep Report, tools []string, title, ylabel string, logY bool, phase string, value func(Run) (float64, bool)) chart {
	byKey, ns := indexRuns(rep.Runs)
	slices.Sort(ns)
	c := chart{Title: title, YLabel: ylabel, LogY: logY, Ns: ns}
	dnf := dnfText(rep.Budget)
	for _, t := range tools {
		s := series{Name: t}
		for _, n := range ns {
			r, ok := byKey.get(t, n)
			p := point{N: n}
			switch {
			case !ok:
				p.Note = "not run"
			case !measured(r, phase):
				p.Note = dnf
			default:
				v, ok := value(r)
				if !ok || (logY && v <= 0) {
					p.Note = "failed (see the report's errors)"
				} else {
					p.V = v
				}
			}
			s.Points = append(s.Points, p)
		}
		c.Series = append(c.Series, s)
	}
	return c
}

// svg renders the chart as a standalone SVG document.
func (c chart) svg() []byte {
	var b bytes.Buffer
	esc := func(s string) string {
		var e strings.Builder
		xml.EscapeText(&e, []byte(s))
		return e.String()
	}
	// A point not measured is a cross at the top of its N, explained in a
	// note under the chart, which grows to hold them.
	var notes []string
	for _, s := range c.Series {
		for _, p := range s.Points {
			if p.Note != "" {
				notes = append(notes, fmt.Sprintf("%s, N = %s: %s", s.Name, commas(p.N), p.Note))
			}
		}
	}
	height := svgH
	if len(notes) > 0 {
		height += 20 + 16*len(notes)
	}
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">
<rect width="100%%" height="100%%" fill="white"/>
<text x="%d" y="24" font-size="15" font-weight="bold">%s</text>
`, svgW, height, svgW, height, padL, esc(c.Title))

	// The scales.
	lo, hi := 0.0, 1.0
	var vals []float64
	for _, s := range c.Series {
		for _, p := range s.Points {
			if p.Note == "" {
				vals = append(vals, p.V)
			}
		}
	}
	var yTicks []float64
	if c.LogY {
		lo, hi = 0.1, 1
		if len(vals) > 0 {
			lo = math.Pow(10, math.Floor(math.Log10(slices.Min(vals))))
			hi = math.Pow(10, math.Ceil(math.Log10(slices.Max(vals))))
		}
		if hi <= lo {
			hi = lo * 10
		}
		for v := lo; v <= hi*1.0001; v *= 10 {
			yTicks = append(yTicks, v)
		}
	} else {
		if len(vals) > 0 {
			lo = min(0, slices.Min(vals))
			hi = niceCeil(slices.Max(vals) * 1.1)
		}
		if hi <= lo {
			hi = lo + 1
		}
		step := niceCeil((hi - lo) / 5)
		for v := math.Floor(lo/step) * step; v <= hi*1.0001; v += step {
			yTicks = append(yTicks, v)
		}
		lo, hi = min(lo, yTicks[0]), max(hi, yTicks[len(yTicks)-1])
	}
	y := func(v float64) float64 {
		f := (v - lo) / (hi - lo)
		if c.LogY {
			f = (math.Log10(v) - math.Log10(lo)) / (math.Log10(hi) - math.Log10(lo))
		}
		return float64(padT) + float64(plotH)*(1-f)
	}
	nlo, nhi := 1, 10
	if len(c.Ns) > 0 {
		nlo, nhi = slices.Min(c.Ns), slices.Max(c.Ns)
	}
	x := func(n int) float64 {
		if nhi == nlo {
			return float64(padL) + float64(plotW)/2
		}
		f := (math.Log10(float64(n)) - math.Log10(float64(nlo))) / (math.Log10(float64(nhi)) - math.Log10(float64(nlo)))
		return float64(padL) + 20 + float64(plotW-40)*f
	}

	// Axes, grid and ticks.
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#444"/>
`, padL, padT, plotW, plotH)
	for _, v := range yTicks {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%s</text>
`, padL, y(v), padL+plotW, y(v), padL-6, y(v)+4, tickLabel(v))
	}
	for _, n := range c.Ns {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/><text x="%.1f" y="%d" text-anchor="middle">%s</text>
`, x(n), padT, x(n), padT+plotH, x(n), padT+plotH+18, commas(n))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">N services (log scale)</text>
<text transform="translate(18 %d) rotate(-90)" text-anchor="middle">%s</text>
`, padL+plotW/2, svgH-14, padT+plotH/2, esc(c.YLabel))

	// A line per tool: a segment joins two measured neighbours.
	for i, s := range c.Series {
		color := toolColors[s.Name]
		if color == "" {
			color = otherColors[i%len(otherColors)]
		}
		for j := 1; j < len(s.Points); j++ {
			a, z := s.Points[j-1], s.Points[j]
			if a.Note == "" && z.Note == "" {
				fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"/>
`, x(a.N), y(a.V), x(z.N), y(z.V), color)
			}
		}
		for _, p := range s.Points {
			if p.Note != "" {
				cx, cy := x(p.N)+float64(6*i-9), float64(padT+10)
				fmt.Fprintf(&b, `<path class="missing" d="M%.1f %.1fl6 6m0 -6l-6 6" stroke="%s" stroke-width="2"><title>%s at N = %s: %s</title></path>
`, cx-3, cy-3, color, esc(s.Name), commas(p.N), esc(p.Note))
				continue
			}
			fmt.Fprintf(&b, `<circle class="point" cx="%.1f" cy="%.1f" r="%g" fill="%s"><title>%s at N = %s: %s</title></circle>
`, x(p.N), y(p.V), pointRadius, color, esc(s.Name), commas(p.N), tickLabel(p.V))
		}
		ly := padT + 10 + 20*i
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/><text x="%d" y="%d">%s</text>
`, legendX, ly, legendX+24, ly, color, legendX+30, ly+4, esc(s.Name))
	}
	for k, n := range notes {
		fmt.Fprintf(&b, `<text class="note" x="%d" y="%d">× not measured: %s</text>
`, padL, svgH+12+16*k, esc(n))
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v*0.9999 {
			return m * p
		}
	}
	return 10 * p
}

func tickLabel(v float64) string {
	switch a := math.Abs(v); {
	case a == 0:
		return "0"
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 1:
		return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.1f", v), "0"), ".")
	default:
		return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", v), "0"), ".")
	}
}

// commas writes n with thousands separators: 10,000.
func commas(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
