package report

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Table is one section of the report.
type Table struct {
	Title  string
	Header []string
	Rows   [][]string
	// Notes are printed under the table, one line each.
	Notes []string
}

// Markdown renders the table as GitHub markdown, readable as plain text too: columns of figures
// are right-aligned, columns of words left-aligned. Rows shorter than the header are padded. It
// only reads t.
func (t Table) Markdown() string {
	var b strings.Builder
	if t.Title != "" {
		b.WriteString("### " + t.Title + "\n\n")
	}
	if len(t.Header) > 0 {
		width := make([]int, len(t.Header))
		cell := func(row []string, i int) string {
			if i < len(row) {
				return strings.ReplaceAll(row[i], "|", `\|`)
			}
			return ""
		}
		for i := range t.Header {
			width[i] = max(3, len([]rune(cell(t.Header, i))))
			for _, r := range t.Rows {
				width[i] = max(width[i], len([]rune(cell(r, i))))
			}
		}
		right := make([]bool, len(t.Header))
		for i := range t.Header {
			right[i] = i > 0 && numericColumn(t.Rows, i)
		}
		line := func(row []string) {
			b.WriteString("|")
			for i := range t.Header {
				c := cell(row, i)
				pad := strings.Repeat(" ", width[i]-len([]rune(c)))
				if right[i] {
					b.WriteString(" " + pad + c + " |")
				} else {
					b.WriteString(" " + c + pad + " |")
				}
			}
			b.WriteString("\n")
		}
		line(t.Header)
		b.WriteString("|")
		for i := range t.Header {
			if right[i] {
				b.WriteString(" " + strings.Repeat("-", width[i]-1) + ": |")
			} else {
				b.WriteString(" " + strings.Repeat("-", width[i]) + " |")
			}
		}
		b.WriteString("\n")
		for _, r := range t.Rows {
			line(r)
		}
	}
	if len(t.Notes) > 0 {
		b.WriteString("\n")
		for _, n := range t.Notes {
			b.WriteString(n + "\n")
		}
	}
	return b.String()
}

// numericColumn reports whether every non-empty cell of column i holds a figure (it starts with
// a digit, a sign, or the dash that stands for "not measured").
func numericColumn(rows [][]string, i int) bool {
	for _, r := range rows {
		if i >= len(r) || r[i] == "" {
			continue
		}
		first, _ := utf8.DecodeRuneInString(r[i])
		if !unicode.IsDigit(first) && first != '-' && first != '+' && first != '–' {
			return false
		}
	}
	return true
}
