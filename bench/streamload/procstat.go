package main

// What the reader measures of the processes it is given, from /proc: CPU time (user and system
// apart), read(2)/write(2) calls and run-queue wait; and the load average.

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// cpuTimes is a process's CPU seconds in user and in system (kernel) mode.
type cpuTimes struct{ user, sys float64 }

func (c cpuTimes) minus(o cpuTimes) cpuTimes { return cpuTimes{c.user - o.user, c.sys - o.sys} }

// procCPU is the user and system CPU seconds of a process (all its threads): utime and stime of
// /proc/<pid>/stat.
func procCPU(pid int) (cpuTimes, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return cpuTimes{}, err
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	u, _ := strconv.ParseFloat(f[11], 64)
	s, _ := strconv.ParseFloat(f[12], 64)
	return cpuTimes{u / 100, s / 100}, nil // USER_HZ is 100 on Linux
}

// procSyscalls is a process's read(2) and write(2) calls so far (syscr and syscw of /proc/<pid>/io;
// recv/send-family calls, which Python's asyncio uses on sockets, are not counted there); ok false
// when the file cannot be read.
func procSyscalls(pid string) (reads, writes int64, ok bool) {
	b, err := os.ReadFile("/proc/" + pid + "/io")
	if err != nil {
		return 0, 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, value, _ := strings.Cut(line, ":")
		v, _ := strconv.ParseInt(strings.TrimSpace(value), 10, 64)
		switch name {
		case "syscr":
			reads = v
		case "syscw":
			writes = v
		}
	}
	return reads, writes, true
}

// syscallsOf is procSyscalls for every name (the reader: "self").
func syscallsOf(procs map[string]int) map[string][2]int64 {
	out := map[string][2]int64{}
	for name, pid := range procs {
		p := strconv.Itoa(pid)
		if name == "reader" {
			p = "self"
		}
		if r, w, ok := procSyscalls(p); ok {
			out[name] = [2]int64{r, w}
		}
	}
	return out
}

// runqWait is the seconds a process's threads spent runnable but waiting for a CPU so far: the
// second field of /proc/<pid>/task/<tid>/schedstat, summed (threads gone meanwhile drop out).
func runqWait(pid string) (float64, bool) {
	tasks, err := os.ReadDir("/proc/" + pid + "/task")
	if err != nil {
		return 0, false
	}
	var ns int64
	for _, t := range tasks {
		b, err := os.ReadFile("/proc/" + pid + "/task/" + t.Name() + "/schedstat")
		if f := strings.Fields(string(b)); err == nil && len(f) >= 2 {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			ns += v
		}
	}
	return float64(ns) / 1e9, true
}

// waitsOf is runqWait for every name (the reader: "self").
func waitsOf(procs map[string]int) map[string]float64 {
	out := map[string]float64{}
	for name, pid := range procs {
		p := strconv.Itoa(pid)
		if name == "reader" {
			p = "self"
		}
		if w, ok := runqWait(p); ok {
			out[name] = w
		}
	}
	return out
}

func selfCPU() cpuTimes {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return cpuTimes{float64(ru.Utime.Nano()) / 1e9, float64(ru.Stime.Nano()) / 1e9}
}

func loadavg() []float64 {
	b, _ := os.ReadFile("/proc/loadavg")
	var out []float64
	for _, f := range strings.Fields(string(b))[:3] {
		v, _ := strconv.ParseFloat(f, 64)
		out = append(out, v)
	}
	return out
}
