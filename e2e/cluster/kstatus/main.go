// kstatus prints how sigs.k8s.io/cli-utils' kstatus library (used by Flux and kpt) reads an object.
// Usage: kubectl get <kind> <name> -o json | kstatus  ->  {"status":"Current","message":"..."}
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

func main() {
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(data); err != nil {
		fmt.Fprintln(os.Stderr, "not a Kubernetes object:", err)
		os.Exit(2)
	}
	result, err := status.Compute(obj)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	out, _ := json.Marshal(map[string]string{"status": string(result.Status), "message": result.Message})
	fmt.Println(string(out))
}
