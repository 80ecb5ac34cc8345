package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

// rawStream is one stream read by rawRun: its socket and where its HTTP/1.1 response is.
type rawStream struct {
	fd      int
	req     []byte
	sent    bool
	head    []byte // the response head until its blank line
	inBody  bool
	chunked bool
	left    int // bytes left in the body (-1: until close; 0 when chunked)
	body    chunked
	scratch []byte // the kept tail plus this read's payload, where markers are counted
	res     stream
	done    bool
}

// rawRun reads k streams on one OS thread with epoll: one read per readiness event and no
// goroutine per stream, for a fraction of net/http's CPU per chunk (a stream per socket, no reuse).
func rawRun(k int, target string, headers [][2]string, body []byte, token []byte) ([]stream, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	host, portS := u.Hostname(), u.Port()
	port, err := strconv.Atoi(portS)
	ip := parseIPv4(host)
	if err != nil || ip == nil || u.Scheme != "http" {
		return nil, fmt.Errorf("-raw reads http://<IPv4>:<port>/... only, not %q", target)
	}
	var req bytes.Buffer
	fmt.Fprintf(&req, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nConnection: close\r\n", u.RequestURI(), u.Host, len(body))
	for _, h := range headers {
		fmt.Fprintf(&req, "%s: %s\r\n", h[0], h[1])
	}
	req.WriteString("\r\n")
	req.Write(body)

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	defer syscall.Close(ep)
	streams := make([]*rawStream, k)
	byFd := map[int]*rawStream{}
	sa := &syscall.SockaddrInet4{Port: port}
	copy(sa.Addr[:], ip)
	for i := range streams {
		s := &rawStream{req: req.Bytes(), left: -1}
		streams[i] = s
		s.res.t0 = time.Now()
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		s.fd = fd
		if err := syscall.Connect(fd, sa); err != nil && !errors.Is(err, syscall.EINPROGRESS) {
			s.finish(err)
			continue
		}
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLOUT, Fd: int32(fd)}
		if err := syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
			return nil, err
		}
		byFd[fd] = s
	}
	buf := make([]byte, 256*1024)
	events := make([]syscall.EpollEvent, 256)
	open := len(byFd)
	for open > 0 {
		n, err := syscall.EpollWait(ep, events, 60000)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, errors.New("no stream moved for 60 s")
		}
		for _, ev := range events[:n] {
			s := byFd[int(ev.Fd)]
			if s == nil || s.done {
				continue
			}
			if !s.sent {
				if ev.Events&(syscall.EPOLLOUT|syscall.EPOLLERR|syscall.EPOLLHUP) == 0 {
					continue
				}
				if e, _ := syscall.GetsockoptInt(s.fd, syscall.SOL_SOCKET, syscall.SO_ERROR); e != 0 {
					s.finish(syscall.Errno(e))
				} else if w, err := syscall.Write(s.fd, s.req); err != nil || w != len(s.req) {
					s.finish(fmt.Errorf("request write: %d of %d bytes, %v", w, len(s.req), err))
				} else {
					s.sent = true
					mod := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: ev.Fd}
					_ = syscall.EpollCtl(ep, syscall.EPOLL_CTL_MOD, s.fd, &mod)
				}
			} else {
				r, err := syscall.Read(s.fd, buf)
				switch {
				case errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR):
					continue
				case err != nil:
					s.finish(err)
				case r == 0:
					if s.left >= 0 || !s.inBody {
						s.finish(errors.New("connection closed before the end of the response"))
					} else {
						s.finish(nil)
					}
				default:
					s.feed(buf[:r], time.Now(), token)
				}
			}
			if s.done {
				open--
				_ = syscall.EpollCtl(ep, syscall.EPOLL_CTL_DEL, s.fd, nil)
				syscall.Close(s.fd)
			}
		}
	}
	out := make([]stream, k)
	for i, s := range streams {
		out[i] = s.res
	}
	return out, nil
}

func parseIPv4(h string) []byte {
	var ip [4]byte
	parts := bytes.Split([]byte(h), []byte("."))
	if len(parts) != 4 {
		return nil
	}
	for i, p := range parts {
		v, err := strconv.Atoi(string(p))
		if err != nil || v < 0 || v > 255 {
			return nil
		}
		ip[i] = byte(v)
	}
	return ip[:]
}

func (s *rawStream) finish(err error) {
	if !s.done {
		s.done, s.res.err = true, err
	}
}

// feed takes one read's bytes: the head first, then the body (de-chunked), whose markers are
// counted in the kept tail plus this read's payload, all stamped with the read's time.
func (s *rawStream) feed(data []byte, now time.Time, token []byte) {
	if !s.inBody {
		s.head = append(s.head, data...)
		i := bytes.Index(s.head, []byte("\r\n\r\n"))
		if i < 0 {
			return
		}
		head := s.head[:i]
		data = s.head[i+4:]
		status := bytes.SplitN(head, []byte(" "), 3)
		if len(status) < 2 || string(status[1]) != "200" {
			end := min(len(s.head), 300)
			s.finish(fmt.Errorf("HTTP status line and head: %q", s.head[:end]))
			return
		}
		for _, h := range bytes.Split(head, []byte("\r\n"))[1:] {
			name, value, _ := bytes.Cut(h, []byte(":"))
			value = bytes.TrimSpace(value)
			switch string(bytes.ToLower(name)) {
			case "transfer-encoding":
				s.chunked = bytes.EqualFold(value, []byte("chunked"))
			case "content-length":
				s.left, _ = strconv.Atoi(string(value))
			}
		}
		if s.chunked {
			s.left = 0
		}
		s.inBody = true
		s.head = nil
	}
	keep := len(token) - 1
	s.scratch = s.scratch[:min(len(s.scratch), keep)]
	if !s.chunked {
		if s.left >= 0 {
			data = data[:min(len(data), s.left)]
			s.left -= len(data)
		}
		s.scratch = append(s.scratch, data...)
	} else {
		for len(data) > 0 && !s.body.done() {
			var payload []byte
			var err error
			if payload, data, err = s.body.next(data); err != nil {
				s.finish(err)
				return
			}
			s.scratch = append(s.scratch, payload...)
		}
	}
	for c := bytes.Count(s.scratch, token); c > 0; c-- {
		s.res.arrivals = append(s.res.arrivals, now)
	}
	if t := len(s.scratch) - keep; t > 0 {
		copy(s.scratch, s.scratch[t:])
		s.scratch = s.scratch[:keep]
	}
	if (s.chunked && s.body.done()) || (!s.chunked && s.left == 0) {
		s.finish(nil)
	}
}
