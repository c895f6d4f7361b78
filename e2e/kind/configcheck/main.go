// Command kind-config-check loads a kind cluster config with kind's own loader (strict YAML,
// conversion, defaulting) and validation, the same code `kind create cluster --config` runs
// before it creates anything, and prints what it understood as JSON.
//
// kind keeps that code under pkg/internal, importable only from below sigs.k8s.io/kind/pkg/;
// e2e/kind/check-config.sh therefore builds this file in a throwaway module whose path lies
// there. It uses nothing but kind's own packages at the pinned version.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"sigs.k8s.io/kind/pkg/apis/config/defaults"
	"sigs.k8s.io/kind/pkg/internal/apis/config/encoding"
)

type node struct {
	Role   string            `json:"role"`
	Image  string            `json:"image"`
	Labels map[string]string `json:"labels,omitempty"`
}

type summary struct {
	Name             string `json:"name"`
	Nodes            []node `json:"nodes"`
	APIServerAddress string `json:"apiServerAddress"`
	IPFamily         string `json:"ipFamily"`
	DefaultImage     string `json:"defaultImage"`
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: kind-config-check KIND_CONFIG.yaml")
		os.Exit(2)
	}
	cfg, err := encoding.Load(os.Args[1])
	if err == nil {
		if cfg.Name == "" {
			cfg.Name = "kind" // `kind create cluster` fills in its default name before validating
		}
		err = cfg.Validate()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "invalid kind config %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
	out := summary{
		Name:             cfg.Name,
		APIServerAddress: cfg.Networking.APIServerAddress,
		IPFamily:         string(cfg.Networking.IPFamily),
		DefaultImage:     defaults.Image,
	}
	for _, n := range cfg.Nodes {
		out.Nodes = append(out.Nodes, node{Role: string(n.Role), Image: n.Image, Labels: n.Labels})
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
