package main

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"syscall"
	"time"
)

// A stream handed to the writer: its socket, its frames framed as HTTP chunks, its schedule.
type rawOut struct {
	fd     int
	frames [][]byte
	start  time.Time
	next   int          // the frame due next
	rest   chan rawStop // where the stream goes back when it is done or the socket is full
	at     time.Time    // frames[next] is due
	intv   time.Duration
}

// rawStop: the writer is done with a stream: all frames written (next == len(frames)), or it
// stopped at a full socket (pending: the unwritten bytes of frame next-1) or on an error.
type rawStop struct {
	next    int
	pending []byte
	err     error
}

type outHeap []*rawOut

func (h outHeap) Len() int           { return len(h) }
func (h outHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h outHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *outHeap) Push(x any)        { *h = append(*h, x.(*rawOut)) }
func (h *outHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// rawWriter writes every stream's frames on one OS thread, each frame one write(2) at its due
// time: no goroutine wake-up and no net/http write path per chunk.
func rawWriter(in <-chan *rawOut) {
	runtime.LockOSThread()
	var h outHeap
	timer := time.NewTimer(time.Hour)
	for {
		if h.Len() == 0 {
			heap.Push(&h, <-in)
		}
		for more := true; more; { // take every stream handed over meanwhile
			select {
			case s := <-in:
				heap.Push(&h, s)
			default:
				more = false
			}
		}
		now := time.Now()
		for h.Len() > 0 {
			s := h[0]
			if s.at.After(now) {
				break
			}
			f := s.frames[s.next]
			w, err := syscall.Write(s.fd, f)
			s.next++
			if err != nil || w < len(f) {
				heap.Pop(&h)
				if err != nil && !errors.Is(err, syscall.EAGAIN) {
					s.rest <- rawStop{next: s.next, err: err}
				} else {
					s.rest <- rawStop{next: s.next, pending: f[max(w, 0):]}
				}
				continue
			}
			if s.next == len(s.frames) {
				heap.Pop(&h)
				s.rest <- rawStop{next: s.next}
				continue
			}
			s.at = s.start.Add(time.Duration(s.next) * s.intv)
			heap.Fix(&h, 0)
		}
		if h.Len() > 0 {
			timer.Reset(time.Until(h[0].at))
			select {
			case s := <-in:
				heap.Push(&h, s)
			case <-timer.C:
			}
		}
	}
}

type connKey struct{}

// rawConnContext keeps each connection in its requests' context, for its socket.
func rawConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// sendRaw writes frames (with their HTTP chunk framing) on the request's socket through the writer,
// after net/http sent the head; net/http writes the last chunk when the handler returns.
func sendRaw(req *http.Request, writer chan<- *rawOut, frames [][]byte, interval time.Duration) error {
	c, ok := req.Context().Value(connKey{}).(*net.TCPConn)
	if !ok {
		return errors.New("not a TCP connection")
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	fd := -1
	if err := rc.Control(func(f uintptr) { fd = int(f) }); err != nil {
		return err
	}
	framed := make([][]byte, len(frames))
	for i, f := range frames {
		framed[i] = fmt.Appendf(nil, "%x\r\n%s\r\n", len(f), f)
	}
	now := time.Now()
	s := &rawOut{fd: fd, frames: framed, start: now, at: now, intv: interval, rest: make(chan rawStop, 1)}
	writer <- s
	stop := <-s.rest
	if stop.err != nil {
		return stop.err
	}
	if stop.next < len(framed) || len(stop.pending) > 0 { // the socket was full: the rest here, blocking
		if _, err := c.Write(stop.pending); err != nil {
			return err
		}
		for i := stop.next; i < len(framed); i++ {
			time.Sleep(time.Until(s.start.Add(time.Duration(i) * interval)))
			if _, err := c.Write(framed[i]); err != nil {
				return err
			}
		}
	}
	time.Sleep(time.Until(s.start.Add(time.Duration(len(framed)) * interval)))
	return nil
}
