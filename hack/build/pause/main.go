// Command pause is the sandbox container of the one-node cluster: it holds the pod's
// namespaces and exits on SIGTERM or SIGINT. Built static (CGO_ENABLED=0), so the image
// needs no other file.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	<-signals
}
