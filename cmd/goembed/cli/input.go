package cli

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"os"
	"strings"
)

// source reads the texts of a corpus: one JSON object a line with the text under field (.jsonl),
// or one text a line (.txt), either optionally gzipped (detected from the content). Blank lines
// are skipped: record i is the i-th non-blank line, and row i of the output is its embedding.
type source struct {
	path, field string
	stdin       io.Reader
	err         error
}

func newSource(path, field string, stdin io.Reader) *source {
	return &source{path: path, field: field, stdin: stdin}
}

// plain says whether lines are texts rather than JSON objects.
func (s *source) plain() bool {
	name := strings.TrimSuffix(s.path, ".gz")
	return strings.HasSuffix(name, ".txt") || s.field == ""
}

// open returns the decompressed content; close releases it.
func (s *source) open() (r *bufio.Reader, close func(), err error) {
	var raw io.Reader
	close = func() {}
	if s.path == "-" {
		raw = s.stdin
	} else {
		f, err := os.Open(s.path)
		if err != nil {
			return nil, nil, err
		}
		raw, close = f, func() { f.Close() }
	}
	br := bufio.NewReaderSize(raw, 1<<20)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			close()
			return nil, nil, fmt.Errorf("%s: %w", s.path, err)
		}
		br = bufio.NewReaderSize(zr, 1<<20)
	}
	return br, close, nil
}

// lines yields the non-blank lines with their 1-based line numbers; a read error ends it and
// is kept in s.err.
func (s *source) lines() iter.Seq2[int, []byte] {
	return func(yield func(int, []byte) bool) {
		r, close, err := s.open()
		if err != nil {
			s.err = err
			return
		}
		defer close()
		for n := 1; ; n++ {
			line, err := r.ReadBytes('\n')
			if t := bytes.TrimSpace(line); len(t) > 0 {
				if !yield(n, line) {
					return
				}
			}
			if err == io.EOF {
				return
			}
			if err != nil {
				s.err = fmt.Errorf("%s: line %d: %w", s.path, n, err)
				return
			}
		}
	}
}

// Texts yields the texts of the records in order; the first bad record (not JSON, field missing
// or not a string) ends it, and Err says why and where.
func (s *source) Texts() iter.Seq[string] {
	return func(yield func(string) bool) {
		for n, line := range s.lines() {
			text, err := s.text(line)
			if err != nil {
				s.err = fmt.Errorf("%s: line %d: %w", s.path, n, err)
				return
			}
			if !yield(text) {
				return
			}
		}
	}
}

func (s *source) text(line []byte) (string, error) {
	if s.plain() {
		return strings.TrimRight(string(line), "\r\n"), nil
	}
	var rec map[string]json.RawMessage
	if err := json.Unmarshal(line, &rec); err != nil {
		return "", fmt.Errorf("not a JSON object: %v", err)
	}
	raw, ok := rec[s.field]
	if !ok {
		return "", fmt.Errorf("no field %q (use --field to pick the text field)", s.field)
	}
	var text string
	if err := json.Unmarshal(raw, &text); err != nil {
		return "", fmt.Errorf("field %q is not a string: %s", s.field, clip(raw))
	}
	return text, nil
}

// Count is the number of records, from a pass that only splits lines (-1 for stdin).
func (s *source) Count() (int64, error) {
	if s.path == "-" {
		return -1, nil
	}
	var n int64
	for range s.lines() {
		n++
	}
	return n, s.err
}

// Err is the error that ended Texts, if any.
func (s *source) Err() error { return s.err }

func clip(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}
