package main

import "unicode/utf8"

// OpenAI's "obfuscation" padding, as modelroute.testing.emulators.dialects.obfuscation writes it:
// the last field of every chat chunk unless stream_options.include_obfuscation is false, 1-16
// characters that make the chunk's JSON text 1 (mod 16) code points long, cut from the same
// pseudo-random pool (splitmix64 from 0 over [A-Za-z0-9]) at the same place, so the bytes match.

const (
	obfAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	obfPoolSize = 1024
)

var obfPool = func() string {
	b := make([]byte, 0, obfPoolSize+16)
	var x uint64
	for i := 0; i < obfPoolSize; i++ {
		x += 0x9E3779B97F4A7C15
		z := (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9
		z = (z ^ (z >> 27)) * 0x94D049BB133111EB
		b = append(b, obfAlphabet[(z^(z>>31))%uint64(len(obfAlphabet))])
	}
	return string(append(b, b[:16]...))
}()

// obfuscate appends to buf, whose tail from start is a chunk's JSON object, that object with its
// "obfuscation" field last (frame index of the stream answering request seq).
func obfuscate(buf []byte, start int, seq int64, index int) []byte {
	n := 16 - utf8.RuneCount(buf[start:])%16
	at := (seq*977 + int64(index)*61) % obfPoolSize
	buf = append(buf[:len(buf)-1], `,"obfuscation":"`...)
	return append(append(buf, obfPool[at:at+int64(n)]...), `"}`...)
}
