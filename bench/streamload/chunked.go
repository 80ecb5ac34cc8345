package main

import (
	"bytes"
	"errors"
	"fmt"
)

const (
	stSize = iota
	stData
	stCRLF
	stDone
)

// chunked follows an HTTP/1.1 chunked body (the reader's and the relay's): it hands out the
// payload and skips the framing, across reads. No trailers: the emulators and relays here send none.
type chunked struct {
	state   int // stSize, stData, stCRLF (after data, or after the last chunk: left < 0), stDone
	left    int
	size    int64
	digits  int  // hex digits of the current size line so far, parsed into size
	sizeEnd bool // past the digits (a chunk extension or the CR)
}

func (c *chunked) done() bool { return c.state == stDone }

// next takes the body's next bytes: the payload at their start (maybe none) and the bytes after
// what it took; call again while rest is not empty and the body is not done.
func (c *chunked) next(data []byte) (payload, rest []byte, err error) {
	switch c.state {
	case stSize:
		for i, b := range data {
			switch {
			case b == '\n':
				if c.digits == 0 {
					return nil, nil, errors.New("a chunk size line without a size")
				}
				c.left, c.state = int(c.size), stData
				if c.size == 0 { // the last chunk: its CRLF ends the body
					c.left, c.state = -1, stCRLF
				}
				return nil, data[i+1:], nil
			case c.sizeEnd || b == '\r' || b == ';' || b == ' ' || b == '\t':
				c.sizeEnd = true
			default:
				d, ok := hexDigit(b)
				if !ok || c.size > 1<<40 {
					return nil, nil, fmt.Errorf("bad chunk size byte %q", b)
				}
				c.size, c.digits = c.size*16+int64(d), c.digits+1
			}
		}
		return nil, nil, nil
	case stData:
		take := min(len(data), c.left)
		if c.left -= take; c.left == 0 {
			c.state = stCRLF
		}
		return data[:take], data[take:], nil
	case stCRLF:
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			return nil, nil, nil
		}
		if c.left < 0 {
			c.state = stDone
		} else {
			c.state, c.size, c.digits, c.sizeEnd = stSize, 0, 0, false
		}
		return nil, data[i+1:], nil
	}
	return nil, nil, nil
}

func hexDigit(c byte) (int, bool) {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0'), true
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10, true
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10, true
	}
	return 0, false
}
