package jws

import (
	"encoding/json"
	"unicode/utf8"
)

// members calls fn with each member of b, a JSON object, in order: its name
// as encoding/json decodes it and its value as written. It returns
// ErrMalformed if b is not one valid JSON object, or if flat is set and a
// value is an object or an array; and fn's first error.
//
// json.Valid checks the syntax first, without allocating, so the scan
// itself only finds where names and values start and end.
func members(b []byte, flat bool, fn func(name string, value []byte) error) error {
	if !json.Valid(b) {
		return ErrMalformed
	}
	i := skipSpace(b, 0)
	if b[i] != '{' {
		return ErrMalformed
	}
	i = skipSpace(b, i+1)
	if b[i] == '}' {
		return nil // json.Valid: only space follows
	}
	for {
		end := stringEnd(b, i)
		name := unquote(b[i:end])
		i = skipSpace(b, end) // at ':'
		i = skipSpace(b, i+1) // at the value
		if flat && (b[i] == '{' || b[i] == '[') {
			return ErrMalformed
		}
		start := i
		i = valueEnd(b, i)
		if err := fn(name, b[start:i]); err != nil {
			return err
		}
		i = skipSpace(b, i)
		if b[i] == '}' {
			return nil
		}
		i = skipSpace(b, i+1) // past ','
	}
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON white space.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index just past the valid JSON string at b[i].
func stringEnd(b []byte, i int) int {
	for j := i + 1; ; j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
}

// valueEnd returns the index just past the valid JSON value at b[i].
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for j := i; ; j++ {
			switch b[j] {
			case '"':
				j = stringEnd(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
	}
	j := i
	for j < len(b) {
		switch b[j] {
		case ' ', '\t', '\n', '\r', ',', '}', ']':
			return j
		}
		j++
	}
	return j
}

// unquote decodes q, a valid JSON string with its quotes, as encoding/json
// does (invalid UTF-8 and lone surrogates become U+FFFD).
func unquote(q []byte) string {
	s := q[1 : len(q)-1]
	plain := utf8.Valid(s)
	for _, c := range s {
		if c == '\\' {
			plain = false
			break
		}
	}
	if plain {
		return string(s)
	}
	var out string
	if json.Unmarshal(q, &out) != nil {
		return "" // not reached: q is valid
	}
	return out
}
