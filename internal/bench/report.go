package bench

import (
	"fmt"
	"html"
	"io"
	"strings"
)

// Table is one scenario's result, printed as a Markdown table.
type Table struct {
	Title   string
	Columns []string
	Rows    [][]string
	Notes   []string
	// Bars, when set, are plotted by SVG: one bar per label.
	Bars     []Bar
	BarsUnit string
}

// Bar is one value of a plot.
type Bar struct {
	Label string
	Value float64
}

// Markdown writes the table, BENCHMARKS.md-ready.
func (t Table) Markdown(w io.Writer) {
	fmt.Fprintf(w, "### %s\n\n", t.Title)
	fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(t.Columns, " | "), strings.Repeat(" --- |", len(t.Columns)))
	for _, r := range t.Rows {
		fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | "))
	}
	fmt.Fprintln(w)
	for _, n := range t.Notes {
		if n == "" {
			continue
		}
		fmt.Fprintf(w, "%s\n\n", n)
	}
}

// SVG draws the bars as a horizontal bar chart.
func (t Table) SVG(w io.Writer) {
	const width, left, barH, gap, top = 640, 220, 22, 8, 36
	maxV := 0.0
	for _, b := range t.Bars {
		maxV = max(maxV, b.Value)
	}
	if maxV == 0 {
		maxV = 1
	}
	height := top + len(t.Bars)*(barH+gap) + 10
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="white"/><text x="10" y="20" font-size="14" font-weight="bold">%s (%s)</text>`+"\n", html.EscapeString(t.Title), html.EscapeString(t.BarsUnit))
	span := float64(width - left - 90)
	for i, b := range t.Bars {
		y := top + i*(barH+gap)
		wBar := b.Value / maxV * span
		fill := "#4878a8"
		if strings.Contains(b.Label, "asynq") || strings.Contains(b.Label, "Enqueue") || strings.Contains(b.Label, "baseline") {
			fill = "#a8a8a8"
		}
		fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="end">%s</text>`, left-6, y+barH-6, html.EscapeString(b.Label))
		fmt.Fprintf(w, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`, left, y, wBar, barH, fill)
		fmt.Fprintf(w, `<text x="%.1f" y="%d">%s</text>`+"\n", float64(left)+wBar+4, y+barH-6, num(b.Value))
	}
	fmt.Fprintln(w, "</svg>")
}

// num formats a figure with sensible precision.
func num(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a/b)
}
