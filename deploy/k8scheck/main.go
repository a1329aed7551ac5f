// Command k8scheck validates Kubernetes manifests (a multi-document YAML
// stream on stdin, such as `kustomize build deploy/k8s`) against the
// Kubernetes API's own types: every document must be a known kind of the
// built-in API groups, and decode strictly — an unknown or misspelt field,
// a duplicate field or a value of the wrong type is an error.
//
// Why not kubeconform: it validates against JSON schemas it downloads from
// GitHub at run time, and this project's machines reach no network but the
// package registries. The API types are the source those schemas are
// generated from; what strict decoding does not check (required fields,
// enum values) is left to the API server's dry run (kubectl apply
// --dry-run=server) where a cluster is at hand.
//
// It lives in a module of its own so that the Kubernetes API packages stay
// out of orderflow's go.mod; scripts/deploy-check.sh installs it into bin/.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

func main() {
	n, err := check(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "k8scheck:", err)
		os.Exit(1)
	}
	fmt.Printf("k8scheck: %d objects valid\n", n)
}

func check(in io.Reader) (int, error) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme,
		autoscalingv2.AddToScheme, policyv1.AddToScheme, networkingv1.AddToScheme, rbacv1.AddToScheme} {
		if err := add(scheme); err != nil {
			return 0, err
		}
	}
	decoder := serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()
	reader := utilyaml.NewYAMLReader(bufio.NewReader(in))
	var errs []error
	n := 0
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return n, err
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		n++
		if _, gvk, err := decoder.Decode(doc, nil, nil); err != nil {
			what := "document"
			if gvk != nil {
				what = gvk.String()
			}
			errs = append(errs, fmt.Errorf("object %d (%s): %w", n, what, err))
		}
	}
	if n == 0 {
		return 0, errors.New("no objects on stdin")
	}
	return n, errors.Join(errs...)
}
