// Command streamload is the load side of bench/streaming.py --load go: a streaming emulator and a
// reader of many concurrent streams, cheap enough per chunk that 500 streams of 200 chunks at 5 ms
// (100,000 chunks/s) leave this 2-core host's CPU to the relay being measured. The Python emulator
// and aiohttp reader need 1.57 and 1.03 CPU for that alone (bench/README.md, session 5).
//
//	streamload emulate -listen 127.0.0.1:PORT -chunks 200 -interval-ms 5
//	streamload read -url URL -body JSON -header 'K: V' -streams 500 -chunks 200 -interval-ms 5 -token MARK
//	streamload relay -listen 127.0.0.1:PORT -upstream 127.0.0.1:PORT [-loops 1]
//
// emulate answers POST /v1/chat/completions and /v1/messages with stream: true with the bytes of
// the project's emulator (modelroute.testing.emulators with --stream-words N and a chunk_latency_ms
// fault): a text reply "w1 ... wN", one SSE frame per write, frame i due at start + i x interval;
// OpenAI chunks carry the real API's "obfuscation" padding unless include_obfuscation is false
// (obfuscation.go).
// net/http reads the requests and sends the heads; by default one OS thread writes every stream's
// frames on its socket (rawwrite.go; -raw=false: a goroutine per stream through net/http).
// Only the bench's request shape is served (text messages; no tools, JSON mode or stop sequences).
//
// read opens the streams at once (one connection each; by default all read on one OS thread with
// epoll, rawread.go, a third less CPU per chunk than net/http's -raw=false), counts the
// content-chunk marker in the bytes as they arrive and prints JSON: lateness of every content chunk against its stream's
// schedule (the definition of streaming.py's per_stream), TTFT, the reader's CPU and that of -pids,
// user and system time apart, their read(2)/write(2) calls and their time runnable but waiting for
// a CPU (what the host's other work takes from them).
//
// relay (relay.go) is the floor of any relay: HTTP/1.1 in, the same request upstream on a kept-alive
// connection, the answer's bytes relayed as they arrive, one epoll loop on one OS thread.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: streamload emulate|read|relay [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "emulate":
		err = emulate(os.Args[2:])
	case "read":
		err = read(os.Args[2:])
	case "relay":
		err = relay(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q: emulate, read or relay", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "streamload:", err)
		os.Exit(1)
	}
}

// ---- emulate -------------------------------------------------------------------------------

// jsonText is Python's json.dumps(s, ensure_ascii=False) for the strings the bench sends.
func jsonText(s string) []byte {
	if plain(s) {
		return []byte(`"` + s + `"`)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return bytes.TrimRight(b.Bytes(), "\n")
}

// plain: printable ASCII with nothing JSON escapes.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

func words(text string) int { return len(strings.Fields(text)) }

// textOf is the text of an OpenAI content or the text blocks of an Anthropic one, joined by spaces.
func textOf(content any) string {
	switch c := content.(type) {
	case string:
		return c
	case []any:
		var parts []string
		for _, p := range c {
			if m, ok := p.(map[string]any); ok && m["type"] == "text" {
				s, _ := m["text"].(string)
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, " ")
	}
	return ""
}

type request struct {
	Model               string           `json:"model"`
	Stream              bool             `json:"stream"`
	Messages            []map[string]any `json:"messages"`
	System              any              `json:"system"`
	MaxTokens           *int             `json:"max_tokens"`
	MaxCompletionTokens *int             `json:"max_completion_tokens"`
	StreamOptions       struct {
		IncludeUsage       bool  `json:"include_usage"`
		IncludeObfuscation *bool `json:"include_obfuscation"`
	} `json:"stream_options"`
	Tools          any `json:"tools"`
	ResponseFormat any `json:"response_format"`
	Stop           any `json:"stop"`
	StopSequences  any `json:"stop_sequences"`
}

// reply is the emulator's streamed text reply: w1 ... wN, cut to max tokens (words) as finalize does.
func reply(n int, maxTokens *int) (pieces []string, finishLength bool) {
	if maxTokens != nil && *maxTokens < n {
		n, finishLength = max(*maxTokens, 0), true
	}
	for i := 1; i <= n; i++ {
		if i == 1 {
			pieces = append(pieces, "w1")
		} else {
			pieces = append(pieces, " w"+strconv.Itoa(i))
		}
	}
	return pieces, finishLength
}

func openaiFrames(r *request, seq int64, created int64, chunks int) [][]byte {
	head := fmt.Sprintf(`{"id":"chatcmpl-emu%d","object":"chat.completion.chunk","created":%d,"model":%s,`+
		`"service_tier":"default","system_fingerprint":"fp_emulator"`, seq, created, jsonText(r.Model))
	if r.StreamOptions.IncludeUsage {
		head += `,"usage":null`
	}
	pre := head + `,"choices":[{"index":0,"delta":`
	noFinish := `,"logprobs":null,"finish_reason":null}]}`
	maxTokens := r.MaxCompletionTokens
	if maxTokens == nil {
		maxTokens = r.MaxTokens
	}
	pieces, cut := reply(chunks, maxTokens)
	obf := r.StreamOptions.IncludeObfuscation == nil || *r.StreamOptions.IncludeObfuscation
	// Every frame cut from one buffer: one allocation per stream, not one per frame (the start of
	// 500 streams at once is the emulator's busiest moment).
	buf := make([]byte, 0, (len(pre)+len(noFinish)+60)*(len(pieces)+2))
	var frames [][]byte
	chunk := func(parts ...string) []byte {
		start := len(buf)
		buf = append(buf, "data: "...)
		for _, p := range parts {
			buf = append(buf, p...)
		}
		if obf { // OpenAI's default: every chunk padded
			buf = obfuscate(buf, start+6, seq, len(frames))
		}
		buf = append(buf, "\n\n"...)
		return buf[start:len(buf):len(buf)]
	}
	frames = append(frames, chunk(pre, `{"role":"assistant","content":"","refusal":null}`, noFinish))
	for _, p := range pieces {
		frames = append(frames, chunk(pre, `{"content":`, string(jsonText(p)), `}`, noFinish))
	}
	finish := "stop"
	if cut {
		finish = "length"
	}
	frames = append(frames, chunk(pre, `{}`, `,"logprobs":null,"finish_reason":"`+finish+`"}]}`))
	if r.StreamOptions.IncludeUsage {
		prompt := 0
		for _, m := range r.Messages {
			prompt += words(textOf(m["content"]))
		}
		out := len(pieces)
		usage := fmt.Sprintf(`{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d,`+
			`"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":`+
			`{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}`,
			prompt, out, prompt+out)
		// {**head, "choices": [], "usage": ...}: "usage" keeps head's place, "choices" comes last.
		frames = append(frames, chunk(strings.TrimSuffix(head, `"usage":null`), `"usage":`, usage, `,"choices":[]}`))
	}
	return append(frames, []byte("data: [DONE]\n\n"))
}

func sseEvent(name, data string) []byte { return []byte("event: " + name + "\ndata: " + data + "\n\n") }

func anthropicFrames(r *request, seq int64, chunks int) [][]byte {
	prompt := 0
	if r.System != nil {
		prompt += words(textOf(r.System))
	}
	for _, m := range r.Messages {
		prompt += words(textOf(m["content"]))
	}
	pieces, cut := reply(chunks, r.MaxTokens)
	usage := func(out int) string {
		return fmt.Sprintf(`{"input_tokens":%d,"output_tokens":%d,"cache_creation_input_tokens":0,`+
			`"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},`+
			`"service_tier":"standard"}`, prompt, out)
	}
	frames := [][]byte{
		sseEvent("message_start", fmt.Sprintf(`{"type":"message_start","message":{"id":"msg_emu%d","type":"message",`+
			`"role":"assistant","model":%s,"content":[],"stop_reason":null,"stop_sequence":null,"usage":%s}}`,
			seq, jsonText(r.Model), usage(1))),
		sseEvent("content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`),
		sseEvent("ping", `{"type":"ping"}`),
	}
	for _, p := range pieces {
		frames = append(frames, sseEvent("content_block_delta",
			`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":`+string(jsonText(p))+`}}`))
	}
	stop := "end_turn"
	if cut {
		stop = "max_tokens"
	}
	return append(frames,
		sseEvent("content_block_stop", `{"type":"content_block_stop","index":0}`),
		sseEvent("message_delta", fmt.Sprintf(`{"type":"message_delta","delta":{"stop_reason":"%s","stop_sequence":null},`+
			`"usage":{"output_tokens":%d}}`, stop, len(pieces))),
		sseEvent("message_stop", `{"type":"message_stop"}`))
}

func emulate(argv []string) error {
	fs := flag.NewFlagSet("emulate", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:0", "host:port (loopback)")
	chunks := fs.Int("chunks", 200, "content chunks per stream (words of the reply)")
	intervalMs := fs.Float64("interval-ms", 5, "between frames")
	raw := fs.Bool("raw", true, "write every stream's frames from one OS thread (false: a goroutine per stream, net/http)")
	_ = fs.Parse(argv)
	interval := time.Duration(*intervalMs * float64(time.Millisecond))
	writer := make(chan *rawOut, 1024)
	go rawWriter(writer)
	var seq atomic.Int64
	bad := func(w http.ResponseWriter, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = fmt.Fprintf(w, `{"error":{"message":%s,"type":"invalid_request_error"}}`, jsonText("streamload: "+msg))
	}
	serve := func(anthropic bool) http.HandlerFunc {
		return func(w http.ResponseWriter, req *http.Request) {
			var r request
			if err := json.NewDecoder(req.Body).Decode(&r); err != nil {
				bad(w, "the body is not JSON: "+err.Error())
				return
			}
			if !r.Stream || len(r.Messages) == 0 || r.Tools != nil || r.ResponseFormat != nil || r.Stop != nil ||
				r.StopSequences != nil || (anthropic && r.MaxTokens == nil) {
				bad(w, "serves the bench's streamed text request only (stream: true, messages; no tools, "+
					"response_format or stop; max_tokens on /v1/messages)")
				return
			}
			n := seq.Add(1)
			var frames [][]byte
			h := w.Header()
			h.Set("Content-Type", "text/event-stream")
			h.Set("Cache-Control", "no-cache")
			if anthropic {
				frames = anthropicFrames(&r, n, *chunks)
				h.Set("request-id", fmt.Sprintf("req_emu%d", n))
			} else {
				frames = openaiFrames(&r, n, time.Now().Unix(), *chunks)
				h.Set("x-request-id", fmt.Sprintf("req_emu%d", n))
			}
			flusher := w.(http.Flusher)
			w.WriteHeader(http.StatusOK)
			flusher.Flush() // the headers alone, as aiohttp's prepare sends them
			if *raw {
				_ = sendRaw(req, writer, frames, interval)
				return
			}
			// Frame i at start + i x interval (not sleep-after-write: a late wake-up does not push
			// every later frame back); after the last, one interval before the end, as the emulator.
			start := time.Now()
			for i, f := range frames {
				if i > 0 {
					time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
				}
				if _, err := w.Write(f); err != nil {
					return
				}
				flusher.Flush()
			}
			time.Sleep(time.Until(start.Add(time.Duration(len(frames)) * interval)))
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", serve(false))
	mux.HandleFunc("POST /v1/messages", serve(true))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	return (&http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 30 * time.Second,
		ConnContext: rawConnContext}).ListenAndServe()
}

// ---- read ----------------------------------------------------------------------------------

type headerList []string

func (h *headerList) String() string     { return strings.Join(*h, ", ") }
func (h *headerList) Set(v string) error { *h = append(*h, v); return nil }

type stream struct {
	t0       time.Time
	arrivals []time.Time
	err      error
}

// one reads a stream; the arrival time of each content chunk (a marker split across two reads is
// counted once: the last len(token)-1 bytes are kept, as streaming.py's one_stream does).
func one(client *http.Client, url string, headers http.Header, body []byte, token []byte) stream {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return stream{err: err}
	}
	req.Header = headers.Clone()
	s := stream{t0: time.Now()}
	resp, err := client.Do(req)
	if err != nil {
		s.err = err
		return s
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		s.err = fmt.Errorf("%s: HTTP %d: %q", url, resp.StatusCode, b)
		return s
	}
	keep := len(token) - 1
	buf := make([]byte, keep+32*1024)
	tail := 0
	for {
		n, err := resp.Body.Read(buf[tail:])
		if n > 0 {
			now := time.Now()
			data := buf[:tail+n]
			for c := bytes.Count(data, token); c > 0; c-- {
				s.arrivals = append(s.arrivals, now)
			}
			tail = min(keep, len(data))
			copy(buf, data[len(data)-tail:])
		}
		if errors.Is(err, io.EOF) {
			return s
		}
		if err != nil {
			s.err = err
			return s
		}
	}
}

// pct is harness.pct: nearest rank on sorted data, Python's round (half to even).
func pct(sorted []float64, p float64) float64 {
	k := int(math.RoundToEven(p / 100 * float64(len(sorted)-1)))
	return sorted[max(0, min(len(sorted)-1, k))]
}

func summary(xs []float64) map[string]float64 {
	if len(xs) == 0 {
		return nil
	}
	s := append([]float64{}, xs...)
	sort.Float64s(s)
	sum := 0.0
	for _, x := range s {
		sum += x
	}
	return map[string]float64{"n": float64(len(s)), "mean": sum / float64(len(s)), "p50": pct(s, 50),
		"p90": pct(s, 90), "p99": pct(s, 99), "max": s[len(s)-1]}
}

func read(argv []string) error {
	fs := flag.NewFlagSet("read", flag.ExitOnError)
	url := fs.String("url", "", "POST here")
	body := fs.String("body", "", "request body")
	var hdrs headerList
	fs.Var(&hdrs, "header", "'Name: value' (repeat)")
	n := fs.Int("streams", 10, "concurrent streams, one connection each")
	warmup := fs.Int("warmup", -1, "streams at once before the measured ones (default min(streams, 20))")
	chunks := fs.Int("chunks", 200, "content chunks each stream must carry")
	intervalMs := fs.Float64("interval-ms", 5, "the emulator's interval")
	lateMs := fs.Float64("late-ms", 50, "the lateness goal")
	token := fs.String("token", `"delta":{"content":"`, "the bytes that mark a content chunk")
	pids := fs.String("pids", "", "name=pid,... whose CPU is measured over the measured streams")
	profile := fs.String("cpuprofile", "", "write a CPU profile of the measured streams here")
	raw := fs.Bool("raw", true, "read with epoll on one thread (false: net/http, a goroutine per stream)")
	_ = fs.Parse(argv)
	if *url == "" || *token == "" {
		return errors.New("read needs -url and -token")
	}
	headers := http.Header{}
	var pairs [][2]string
	for _, h := range hdrs {
		k, v, ok := strings.Cut(h, ":")
		if !ok {
			return fmt.Errorf("header %q: want 'Name: value'", h)
		}
		headers.Set(strings.TrimSpace(k), strings.TrimSpace(v))
		pairs = append(pairs, [2]string{strings.TrimSpace(k), strings.TrimSpace(v)})
	}
	if *warmup < 0 {
		*warmup = min(*n, 20)
	}
	client := &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: *n + *warmup,
		ResponseHeaderTimeout: 60 * time.Second}, Timeout: 600 * time.Second}
	run := func(k int) []stream {
		if *raw {
			out, err := rawRun(k, *url, pairs, []byte(*body), []byte(*token))
			if err != nil {
				fmt.Fprintln(os.Stderr, "streamload:", err)
				os.Exit(1)
			}
			return out
		}
		out := make([]stream, k)
		var wg sync.WaitGroup
		for i := range out {
			wg.Go(func() { out[i] = one(client, *url, headers, []byte(*body), []byte(*token)) })
		}
		wg.Wait()
		return out
	}
	for _, s := range run(*warmup) { // warm the proxies' upstream pools, as streaming.py does
		if s.err != nil {
			return fmt.Errorf("warm-up stream: %w", s.err)
		}
	}
	procs := map[string]int{}
	for _, kv := range strings.Split(*pids, ",") {
		if name, p, ok := strings.Cut(kv, "="); ok {
			pid, err := strconv.Atoi(p)
			if err != nil {
				return fmt.Errorf("-pids %q: %w", kv, err)
			}
			procs[name] = pid
		}
	}
	cpu0 := map[string]cpuTimes{}
	for name, pid := range procs {
		c, err := procCPU(pid)
		if err != nil {
			return err
		}
		cpu0[name] = c
	}
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	counted := map[string]int{"reader": 0}
	for name, pid := range procs {
		counted[name] = pid
	}
	sys0, wait0 := syscallsOf(counted), waitsOf(counted)
	self0, load0, t0 := selfCPU(), loadavg(), time.Now()
	streams := run(*n)
	pprof.StopCPUProfile()
	wall := time.Since(t0).Seconds()
	used := map[string]cpuTimes{"reader": selfCPU().minus(self0)}
	waits := map[string]float64{}
	for name, w := range waitsOf(counted) {
		if w0, ok := wait0[name]; ok {
			waits[name] = w - w0
		}
	}
	calls := map[string]map[string]int64{}
	for name, c := range syscallsOf(counted) {
		if c0, ok := sys0[name]; ok {
			calls[name] = map[string]int64{"read": c[0] - c0[0], "write": c[1] - c0[1]}
		}
	}
	for name, pid := range procs {
		c, err := procCPU(pid)
		if err != nil {
			return err
		}
		used[name] = c.minus(cpu0[name])
	}
	cpu, user, sys := map[string]float64{}, map[string]float64{}, map[string]float64{}
	for name, c := range used {
		cpu[name], user[name], sys[name] = c.user+c.sys, c.user, c.sys
	}
	interval := *intervalMs / 1000
	var late, ttft []float64
	errs, over := 0, 0
	firstErr := ""
	for _, s := range streams {
		if s.err == nil && len(s.arrivals) != *chunks {
			s.err = fmt.Errorf("a stream had %d content chunks, expected %d", len(s.arrivals), *chunks)
		}
		if s.err != nil {
			if errs == 0 {
				firstErr = s.err.Error()
			}
			errs++
			continue
		}
		// streaming.py's per_stream: chunk i due at start + i x interval, with the earliest start
		// the arrivals allow (a late first chunk does not make the rest look early).
		base := s.arrivals[0]
		start := math.Inf(1)
		for i, t := range s.arrivals {
			start = min(start, t.Sub(base).Seconds()-float64(i)*interval)
		}
		for i, t := range s.arrivals {
			l := (t.Sub(base).Seconds() - start - float64(i)*interval) * 1000
			late = append(late, l)
			if l > *lateMs {
				over++
			}
		}
		ttft = append(ttft, s.arrivals[0].Sub(s.t0).Seconds()*1000)
	}
	out := map[string]any{"streams": *n, "errors": errs, "first_error": firstErr, "chunks": len(late),
		"chunks_over_goal": over, "late": summary(late), "ttft": summary(ttft), "wall_s": wall,
		"cpu_s": cpu, "cpu_user_s": user, "cpu_sys_s": sys,
		"syscalls": calls, "runq_wait_s": waits, "loadavg_start": load0, "loadavg_end": loadavg()}
	return json.NewEncoder(os.Stdout).Encode(out)
}
