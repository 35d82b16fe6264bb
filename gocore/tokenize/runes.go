package tokenize

import (
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// runeNorm is what BertNormalizer and BertPreTokenizer make of one non-ASCII rune.
type runeNorm struct {
	kind  byte   // kindWord, kindDrop, kindSpace or kindPunct
	out   string // the normalized rune(s): part of a word, or a punctuation word of its own
	chars int    // runes in out
}

// fastBlocks are the Unicode blocks whose runes the fast path normalizes itself: Latin, Greek,
// Cyrillic, general punctuation, currency, letterlike symbols, arrows and mathematical
// operators, the non-ASCII runes of English text. Other runes (CJK included) go to HF.
// TestFastPathRunes checks every rune of these blocks against HF in several contexts.
var fastBlocks = [][2]rune{
	{0x80, 0x24F}, {0x370, 0x52F}, {0x1E00, 0x1FFF}, {0x2000, 0x206F}, {0x20A0, 0x20CF},
	{0x2100, 0x214F}, {0x2190, 0x22FF},
}

// runeTable builds the normalization of the fastBlocks runes with HF's rules
// (normalizers/bert.rs): clean_text drops Cc, Cf, Co and maps White_Space to a space;
// strip_accents is NFD without nonspacing marks (Mn); lowercase is char::to_lowercase; then the
// pre-tokenizer splits at White_Space and isolates punctuation (P*). A rune is left out (so
// texts with it go to HF) where one rule could see context or the tables could differ: it
// combines with its neighbours under NFD (canonical class != 0), is unassigned in Go's tables,
// lowercases to several runes in Rust (U+0130), or normalizes to a mix of word and punctuation.
func runeTable(cleanText, lowercase, strip bool) map[rune]runeNorm {
	table := map[rune]runeNorm{}
	for _, b := range fastBlocks {
		for r := b[0]; r <= b[1]; r++ {
			if rn, ok := normRune(r, cleanText, lowercase, strip); ok {
				table[r] = rn
			}
		}
	}
	return table
}

func normRune(r rune, cleanText, lowercase, strip bool) (runeNorm, bool) {
	s := string(r)
	if r == 0x130 || norm.NFD.PropertiesString(s).CCC() != 0 ||
		!unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Z, unicode.Cc, unicode.Cf, unicode.Co) {
		return runeNorm{}, false
	}
	if cleanText && unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co) {
		return runeNorm{kind: kindDrop}, true
	}
	if unicode.Is(unicode.White_Space, r) {
		return runeNorm{kind: kindSpace}, true
	}
	if strip {
		var b []rune
		for _, c := range norm.NFD.String(s) {
			if !unicode.Is(unicode.Mn, c) {
				b = append(b, c)
			}
		}
		s = string(b)
	}
	if lowercase {
		b := []rune(s)
		for i, c := range b {
			b[i] = unicode.ToLower(c)
		}
		s = string(b)
	}
	n := utf8.RuneCountInString(s)
	if n == 0 {
		return runeNorm{kind: kindDrop}, true
	}
	punct := 0
	for _, c := range s {
		if unicode.IsPunct(c) || c < 0x80 && isASCIIPunct(byte(c)) {
			punct++
		} else if unicode.Is(unicode.White_Space, c) || c < 0x80 && !unicode.IsLetter(c) && !unicode.IsDigit(c) {
			return runeNorm{}, false // an ASCII control or space out of NFD: not worth the rules
		}
	}
	switch {
	case punct == 0:
		return runeNorm{kind: kindWord, out: s, chars: n}, true
	case punct == 1 && n == 1:
		return runeNorm{kind: kindPunct, out: s, chars: 1}, true
	}
	return runeNorm{}, false
}

// isASCIIPunct is Rust's char::is_ascii_punctuation.
func isASCIIPunct(c byte) bool {
	return c >= 33 && c <= 47 || c >= 58 && c <= 64 || c >= 91 && c <= 96 || c >= 123 && c <= 126
}
