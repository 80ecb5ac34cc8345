package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"runtime"
	"strconv"
	"syscall"
)

// relay is the floor of any relay on this host: it takes the app's HTTP/1.1 request, sends it to
// the upstream on a kept-alive connection and writes the answer's bytes to the app as they
// arrive, parsing nothing but HTTP framing (the request's head and Content-Length; the response's
// head and chunked framing, to know where it ends). Each loop is one OS thread with epoll
// (level-triggered, one read per readiness event, as rawread.go), so -loops 1 compares with one
// Python process; -loops N runs N such loops on N listening sockets sharing the port
// (SO_REUSEPORT: the kernel spreads the connections), with GOMAXPROCS N.
func relay(argv []string) error {
	fs := flag.NewFlagSet("relay", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:0", "IPv4 host:port to serve (loopback)")
	upstream := fs.String("upstream", "", "IPv4 host:port of the upstream (HTTP/1.1)")
	loops := fs.Int("loops", 1, "epoll loops, one OS thread each")
	_ = fs.Parse(argv)
	la, err := sockaddr(*listen)
	if err != nil {
		return fmt.Errorf("-listen: %w", err)
	}
	ua, err := sockaddr(*upstream)
	if err != nil {
		return fmt.Errorf("-upstream: %w", err)
	}
	if *loops < 1 {
		return errors.New("-loops: at least 1")
	}
	runtime.GOMAXPROCS(*loops)
	errs := make(chan error, *loops)
	for range *loops {
		lfd, err := listener(la)
		if err != nil {
			return err
		}
		go func() { errs <- relayLoop(lfd, ua) }()
	}
	return <-errs
}

func sockaddr(hostport string) (*syscall.SockaddrInet4, error) {
	i := bytes.LastIndexByte([]byte(hostport), ':')
	if i < 0 {
		return nil, fmt.Errorf("%q: want IPv4:port", hostport)
	}
	ip := parseIPv4(hostport[:i])
	port, err := strconv.Atoi(hostport[i+1:])
	if ip == nil || err != nil {
		return nil, fmt.Errorf("%q: want IPv4:port", hostport)
	}
	sa := &syscall.SockaddrInet4{Port: port}
	copy(sa.Addr[:], ip)
	return sa, nil
}

const soReusePort = 0xf // SO_REUSEPORT on Linux (not in package syscall for amd64)

func listener(sa *syscall.SockaddrInet4) (int, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		return -1, err
	}
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, soReusePort, 1); err != nil {
		return -1, err
	}
	if err := syscall.Bind(fd, sa); err != nil {
		return -1, err
	}
	return fd, syscall.Listen(fd, 4096)
}

// rconn is one socket of the relay: an app's connection (up: its upstream while a request is
// relayed) or an upstream one (app: the app's connection it answers, nil while idle in the pool).
type rconn struct {
	fd       int
	upstream bool
	app, up  *rconn
	in       []byte // app: request bytes not yet relayed
	out      []byte // bytes not yet written to this socket (it was full)
	closing  bool   // app: close once the answer is written (it asked Connection: close)
	dialing  bool   // upstream: connect(2) in progress
	resp     framing
}

// framing follows an HTTP/1.1 response's bytes to find where it ends (head, then a chunked or
// Content-Length body, or one until close); it copies nothing but the head.
type framing struct {
	head     []byte
	inBody   bool
	chunked  bool
	untilEOF bool
	keep     bool // the upstream keeps the connection
	left     int  // Content-Length bytes left
	body     chunked
}

// feed takes the next bytes of the response; done when they complete it.
func (f *framing) feed(data []byte) (done bool, err error) {
	if !f.inBody {
		f.head = append(f.head, data...)
		i := bytes.Index(f.head, []byte("\r\n\r\n"))
		if i < 0 {
			if len(f.head) > 64*1024 {
				return false, errors.New("response head over 64 KiB")
			}
			return false, nil
		}
		data = f.head[i+4:]
		lines := bytes.Split(f.head[:i], []byte("\r\n"))
		f.keep, f.left, f.untilEOF = bytes.HasPrefix(lines[0], []byte("HTTP/1.1 ")), -1, false
		for _, h := range lines[1:] {
			name, value, _ := bytes.Cut(h, []byte(":"))
			value = bytes.TrimSpace(value)
			switch string(bytes.ToLower(bytes.TrimSpace(name))) {
			case "transfer-encoding":
				f.chunked = bytes.EqualFold(value, []byte("chunked"))
			case "content-length":
				if f.left, err = strconv.Atoi(string(value)); err != nil || f.left < 0 {
					return false, fmt.Errorf("bad Content-Length %q", value)
				}
			case "connection":
				if bytes.EqualFold(value, []byte("close")) {
					f.keep = false
				}
			}
		}
		f.inBody, f.head = true, f.head[:0]
		switch {
		case f.chunked:
			f.body = chunked{}
		case f.left < 0:
			f.untilEOF, f.keep = true, false
		}
	}
	if f.untilEOF {
		return false, nil
	}
	if !f.chunked {
		f.left -= min(len(data), f.left)
		return f.left == 0, nil
	}
	for len(data) > 0 && !f.body.done() {
		if _, data, err = f.body.next(data); err != nil {
			return false, err
		}
	}
	return f.body.done(), nil
}

// wholeRequest is a whole request at the start of in: the head to send upstream (without the app's
// Connection and Keep-Alive headers: the upstream connection stays open), whether the app asked
// to close, and its length in in; n 0: not whole yet.
func wholeRequest(in []byte) (head []byte, bodyLen int, closing bool, n int, err error) {
	i := bytes.Index(in, []byte("\r\n\r\n"))
	if i < 0 {
		if len(in) > 64*1024 {
			return nil, 0, false, 0, errors.New("request head over 64 KiB")
		}
		return nil, 0, false, 0, nil
	}
	lines := bytes.Split(in[:i], []byte("\r\n"))
	if !bytes.HasSuffix(lines[0], []byte(" HTTP/1.1")) {
		return nil, 0, false, 0, fmt.Errorf("not an HTTP/1.1 request line: %q", lines[0])
	}
	head = append(append(head, lines[0]...), "\r\n"...)
	for _, h := range lines[1:] {
		name, value, _ := bytes.Cut(h, []byte(":"))
		value = bytes.TrimSpace(value)
		switch string(bytes.ToLower(bytes.TrimSpace(name))) {
		case "connection":
			closing = bytes.EqualFold(value, []byte("close"))
			continue
		case "keep-alive":
			continue
		case "transfer-encoding":
			return nil, 0, false, 0, errors.New("chunked request bodies are not relayed")
		case "content-length":
			if bodyLen, err = strconv.Atoi(string(value)); err != nil || bodyLen < 0 {
				return nil, 0, false, 0, fmt.Errorf("bad Content-Length %q", value)
			}
		}
		head = append(append(head, h...), "\r\n"...)
	}
	head = append(head, "\r\n"...)
	if len(in) < i+4+bodyLen {
		return nil, 0, false, 0, nil
	}
	return head, bodyLen, closing, i + 4 + bodyLen, nil
}

type loop struct {
	ep   int
	ua   *syscall.SockaddrInet4
	fds  map[int]*rconn
	idle []*rconn // upstream connections free for the next request
	buf  []byte
}

func relayLoop(lfd int, ua *syscall.SockaddrInet4) error {
	runtime.LockOSThread()
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return err
	}
	l := &loop{ep: ep, ua: ua, fds: map[int]*rconn{}, buf: make([]byte, 256*1024)}
	if err := l.watch(lfd, syscall.EPOLLIN); err != nil {
		return err
	}
	events := make([]syscall.EpollEvent, 256)
	for {
		n, err := syscall.EpollWait(ep, events, -1)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		for _, ev := range events[:n] {
			fd := int(ev.Fd)
			if fd == lfd {
				l.accept(lfd)
				continue
			}
			c := l.fds[fd]
			if c == nil {
				continue
			}
			if ev.Events&(syscall.EPOLLOUT|syscall.EPOLLERR|syscall.EPOLLHUP) != 0 && (c.dialing || len(c.out) > 0) {
				l.writable(c)
			}
			if l.fds[fd] == c && ev.Events&(syscall.EPOLLIN|syscall.EPOLLERR|syscall.EPOLLHUP) != 0 && !c.dialing {
				l.readable(c)
			}
		}
	}
}

func (l *loop) watch(fd int, events uint32) error {
	ev := syscall.EpollEvent{Events: events, Fd: int32(fd)}
	return syscall.EpollCtl(l.ep, syscall.EPOLL_CTL_ADD, fd, &ev)
}

func (l *loop) interest(c *rconn, events uint32) {
	ev := syscall.EpollEvent{Events: events, Fd: int32(c.fd)}
	_ = syscall.EpollCtl(l.ep, syscall.EPOLL_CTL_MOD, c.fd, &ev)
}

func (l *loop) accept(lfd int) {
	for range 64 {
		fd, _, err := syscall.Accept4(lfd, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
		if err != nil {
			return // EAGAIN: none left
		}
		_ = syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
		if l.watch(fd, syscall.EPOLLIN) != nil {
			syscall.Close(fd)
			continue
		}
		l.fds[fd] = &rconn{fd: fd}
	}
}

func (l *loop) close(c *rconn) {
	if l.fds[c.fd] != c {
		return
	}
	delete(l.fds, c.fd)
	_ = syscall.EpollCtl(l.ep, syscall.EPOLL_CTL_DEL, c.fd, nil)
	syscall.Close(c.fd)
	if c.upstream {
		for i, u := range l.idle {
			if u == c {
				l.idle = append(l.idle[:i], l.idle[i+1:]...)
				break
			}
		}
	}
}

// fail ends an app's request: a 502 if nothing of the answer was sent yet, else just the close.
func (l *loop) fail(app *rconn, msg string) {
	if up := app.up; up != nil {
		app.up, up.app = nil, nil
		l.close(up)
		if up.resp.inBody || len(up.resp.head) > 0 {
			l.close(app)
			return
		}
	}
	body := "streamload relay: " + msg
	resp := fmt.Sprintf("HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		len(body), body)
	_, _ = syscall.Write(app.fd, []byte(resp))
	l.close(app)
}

func (l *loop) readable(c *rconn) {
	r, err := syscall.Read(c.fd, l.buf)
	if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR) {
		return
	}
	if c.upstream {
		l.fromUpstream(c, r, err)
		return
	}
	if err != nil || r == 0 { // the app went away: its upstream connection is mid-answer
		if c.up != nil {
			c.up.app = nil
			l.close(c.up)
		}
		l.close(c)
		return
	}
	c.in = append(c.in, l.buf[:r]...)
	if c.up == nil && len(c.out) == 0 {
		l.next(c)
	}
}

// next sends the app's next whole request upstream, if there is one.
func (l *loop) next(app *rconn) {
	head, bodyLen, closing, n, err := wholeRequest(app.in)
	if err != nil {
		l.fail(app, err.Error())
		return
	}
	if n == 0 {
		return
	}
	req := append(head, app.in[n-bodyLen:n]...)
	app.in, app.closing = append(app.in[:0], app.in[n:]...), closing
	var up *rconn
	if k := len(l.idle); k > 0 {
		up, l.idle = l.idle[k-1], l.idle[:k-1]
	} else if up, err = l.dial(); err != nil {
		l.fail(app, "upstream: "+err.Error())
		return
	}
	app.up, up.app, up.resp = up, app, framing{}
	up.out = req
	if !up.dialing {
		l.writable(up)
	}
}

func (l *loop) dial() (*rconn, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	_ = syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	if err := syscall.Connect(fd, l.ua); err != nil && !errors.Is(err, syscall.EINPROGRESS) {
		syscall.Close(fd)
		return nil, err
	}
	if err := l.watch(fd, syscall.EPOLLIN|syscall.EPOLLOUT); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	c := &rconn{fd: fd, upstream: true, dialing: true}
	l.fds[fd] = c
	return c, nil
}

// writable writes what c holds back (an upstream's request, an app's answer bytes).
func (l *loop) writable(c *rconn) {
	if c.dialing {
		if e, _ := syscall.GetsockoptInt(c.fd, syscall.SOL_SOCKET, syscall.SO_ERROR); e != 0 {
			if app := c.app; app != nil {
				l.fail(app, "upstream connect: "+syscall.Errno(e).Error())
			} else {
				l.close(c)
			}
			return
		}
		c.dialing = false
	}
	if len(c.out) > 0 {
		w, err := syscall.Write(c.fd, c.out)
		if err != nil && !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.EINTR) {
			if c.upstream && c.app != nil {
				l.fail(c.app, "upstream write: "+err.Error())
			} else if !c.upstream {
				l.dropApp(c)
			}
			return
		}
		c.out = c.out[max(w, 0):]
	}
	if len(c.out) > 0 {
		l.interest(c, syscall.EPOLLIN|syscall.EPOLLOUT)
		return
	}
	l.interest(c, syscall.EPOLLIN)
	if !c.upstream {
		if c.up != nil { // the socket drained: read the upstream again
			l.interest(c.up, syscall.EPOLLIN)
		} else {
			l.answered(c)
		}
	}
}

// dropApp closes an app's connection and the upstream one answering it.
func (l *loop) dropApp(app *rconn) {
	if up := app.up; up != nil {
		app.up, up.app = nil, nil
		l.close(up)
	}
	l.close(app)
}

// answered: an app's answer is all written; close if it asked, else take its next request.
func (l *loop) answered(app *rconn) {
	if app.closing {
		l.close(app)
		return
	}
	l.next(app)
}

func (l *loop) fromUpstream(up *rconn, r int, err error) {
	app := up.app
	if app == nil { // idle in the pool: the upstream closed it (or sent what nobody asked)
		l.close(up)
		return
	}
	if err != nil || r == 0 {
		if up.resp.untilEOF && err == nil {
			app.up, up.app = nil, nil
			l.close(up)
			app.closing = true
			if len(app.out) == 0 {
				l.close(app)
			}
			return
		}
		l.fail(app, "upstream closed mid-answer")
		return
	}
	data := l.buf[:r]
	done, ferr := up.resp.feed(data)
	if ferr != nil {
		l.fail(app, ferr.Error())
		return
	}
	if len(app.out) > 0 {
		app.out = append(app.out, data...)
	} else {
		w, err := syscall.Write(app.fd, data)
		if err != nil && !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.EINTR) {
			l.dropApp(app)
			return
		}
		if w = max(w, 0); w < len(data) { // the app's socket is full: hold the rest, stop reading upstream
			app.out = append(app.out[:0], data[w:]...)
			l.interest(app, syscall.EPOLLIN|syscall.EPOLLOUT)
			if !done {
				l.interest(up, 0)
			}
		}
	}
	if !done {
		return
	}
	app.up, up.app = nil, nil
	if up.resp.keep {
		l.idle = append(l.idle, up)
		l.interest(up, syscall.EPOLLIN)
	} else {
		l.close(up)
	}
	if len(app.out) == 0 {
		l.answered(app)
	}
}
