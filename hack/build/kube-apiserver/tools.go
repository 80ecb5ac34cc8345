//go:build tools

// Package tools pins the Kubernetes commands built from this module: kube-apiserver for
// the control plane, and the node components (kubelet, kube-controller-manager,
// kube-scheduler) for the one-node cluster, all from the same k8s.io/kubernetes pin.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
