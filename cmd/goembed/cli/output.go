package cli

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// output appends float32 rows to a .npy file (float32, C order, shape (rows, dim)) or a raw .f32
// file (little-endian float32, row after row, no header). It resumes a partial file: the rows
// already there are kept, a torn last row is cut off, and writing continues after them. The
// .npy header is rewritten with the row count at every Commit, so a file cut short by a crash
// still loads with numpy; resuming trusts the file size, not the header.
type output struct {
	path      string
	f         *os.File
	w         *bufio.Writer
	npy       bool
	dim       int
	dataStart int64 // bytes of header before row 0
	rows      int64 // rows written (committed or buffered)
	buf       []byte
}

// npyHeaderLen is the size of the headers goembed writes: room for any row count, and a
// multiple of 64 as the format asks.
const npyHeaderLen = 128

var (
	npyDescr   = regexp.MustCompile(`'descr':\s*'([^']*)'`)
	npyFortran = regexp.MustCompile(`'fortran_order':\s*(True|False)`)
	npyShape   = regexp.MustCompile(`'shape':\s*\(\s*(\d+)\s*,\s*(\d+)\s*,?\s*\)`)
)

// openOutput opens path for rows of dim floats, continuing what is there unless overwrite.
func openOutput(path string, dim int, overwrite bool) (*output, error) {
	o := &output{path: path, dim: dim}
	switch {
	case strings.HasSuffix(path, ".npy"):
		o.npy = true
	case strings.HasSuffix(path, ".f32"):
	case strings.HasSuffix(path, ".parquet"):
		return nil, fmt.Errorf("%s: .parquet output is not supported; write .npy or .f32", path)
	default:
		return nil, fmt.Errorf("%s: unknown output format: the name must end in .npy or .f32", path)
	}
	flags := os.O_RDWR | os.O_CREATE
	if overwrite {
		flags |= os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if err != nil {
		return nil, err
	}
	o.f = f
	if err := o.resume(); err != nil {
		f.Close()
		return nil, err
	}
	o.w = bufio.NewWriterSize(f, 1<<20)
	return o, nil
}

// resume reads what the file holds, cuts a torn row and positions the writer after the last
// whole row.
func (o *output) resume() error {
	st, err := o.f.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	if o.npy {
		if size == 0 {
			if _, err := o.f.Write(npyHeader(0, o.dim, npyHeaderLen)); err != nil {
				return err
			}
			size = npyHeaderLen
		}
		if o.dataStart, err = o.readHeader(); err != nil {
			return err
		}
	}
	rowBytes := int64(4 * o.dim)
	o.rows = (size - o.dataStart) / rowBytes
	end := o.dataStart + o.rows*rowBytes
	if end != size {
		if err := o.f.Truncate(end); err != nil {
			return err
		}
	}
	_, err = o.f.Seek(end, io.SeekStart)
	return err
}

// readHeader checks an existing .npy header and returns where the data starts.
func (o *output) readHeader() (int64, error) {
	bad := func(why string) (int64, error) {
		return 0, fmt.Errorf("%s: cannot continue this file: %s (use --overwrite to start over)", o.path, why)
	}
	pre := make([]byte, 12)
	if _, err := o.f.ReadAt(pre, 0); err != nil || string(pre[:6]) != "\x93NUMPY" {
		return bad("not a .npy file")
	}
	var hlen, start int64
	switch pre[6] {
	case 1:
		hlen, start = int64(binary.LittleEndian.Uint16(pre[8:])), 10
	case 2, 3:
		hlen, start = int64(binary.LittleEndian.Uint32(pre[8:])), 12
	default:
		return bad(fmt.Sprintf(".npy version %d", pre[6]))
	}
	h := make([]byte, hlen)
	if _, err := o.f.ReadAt(h, start); err != nil {
		return bad("truncated header")
	}
	d, fo, sh := npyDescr.FindSubmatch(h), npyFortran.FindSubmatch(h), npyShape.FindSubmatch(h)
	if d == nil || string(d[1]) != "<f4" {
		return bad("not float32 (descr " + strconv.Quote(string(h)) + ")")
	}
	if fo == nil || string(fo[1]) != "False" {
		return bad("not C order")
	}
	if sh == nil {
		return bad("not a 2-D array")
	}
	if dim, _ := strconv.Atoi(string(sh[2])); dim != o.dim {
		return bad(fmt.Sprintf("its rows have %d values, this model gives %d", dim, o.dim))
	}
	if pre[6] != 1 || start+hlen != npyHeaderLen {
		return bad("its header was not written by goembed")
	}
	return start + hlen, nil
}

// npyHeader is a version 1.0 .npy header for a float32 (rows, dim) array, padded to size bytes.
func npyHeader(rows int64, dim, size int) []byte {
	dict := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }", rows, dim)
	pad := size - 10 - len(dict) - 1
	h := make([]byte, 0, size)
	h = append(h, "\x93NUMPY\x01\x00"...)
	h = binary.LittleEndian.AppendUint16(h, uint16(size-10))
	h = append(h, dict...)
	h = append(h, strings.Repeat(" ", max(pad, 0))...)
	return append(h, '\n')
}

// Rows is the number of rows in the file, written ones included.
func (o *output) Rows() int64 { return o.rows }

// Write appends one row.
func (o *output) Write(vec []float32) error {
	if len(vec) != o.dim {
		return fmt.Errorf("row of %d values, want %d", len(vec), o.dim)
	}
	o.buf = o.buf[:0]
	for _, v := range vec {
		o.buf = binary.LittleEndian.AppendUint32(o.buf, math.Float32bits(v))
	}
	if _, err := o.w.Write(o.buf); err != nil {
		return fmt.Errorf("%s: %w", o.path, err)
	}
	o.rows++
	return nil
}

// Commit writes the buffered rows and, for .npy, the row count into the header.
func (o *output) Commit() error {
	if err := o.w.Flush(); err != nil {
		return fmt.Errorf("%s: %w", o.path, err)
	}
	if o.npy {
		if _, err := o.f.WriteAt(npyHeader(o.rows, o.dim, npyHeaderLen), 0); err != nil {
			return fmt.Errorf("%s: %w", o.path, err)
		}
	}
	return nil
}

// Row reads stored row i.
func (o *output) Row(i int64) ([]float32, error) {
	b := make([]byte, 4*o.dim)
	if _, err := o.f.ReadAt(b, o.dataStart+i*int64(len(b))); err != nil {
		return nil, fmt.Errorf("%s: row %d: %w", o.path, i, err)
	}
	out := make([]float32, o.dim)
	for j := range out {
		out[j] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*j:]))
	}
	return out, nil
}

// Close commits and closes the file.
func (o *output) Close() error {
	return errors.Join(o.Commit(), o.f.Close())
}
