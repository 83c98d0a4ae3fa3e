package localaws

import (
	"slices"
	"testing"
)

func TestEmulatorEnvDropsTheHostsAWSSettingsAndAppendsExtra(t *testing.T) {
	tests := []struct {
		name        string
		base, extra []string
		want        []string
	}{
		{"nothing to drop", []string{"A=1"}, []string{"B=2"}, []string{"A=1", "B=2"}},
		{"max concurrency dropped", []string{"AWS_LAMBDA_MAX_CONCURRENCY=4", "A=1"}, nil, []string{"A=1"}},
		{"the host's AWS settings dropped", []string{"AWS_PROFILE=prod", "AWS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt", "AWS_CONFIG_FILE=/x", "PATH=/bin"}, nil, []string{"PATH=/bin"}},
		{"AWS settings given by the caller kept", []string{"AWS_REGION=eu-west-1"}, []string{"AWS_REGION=us-east-1", "AWS_ENDPOINT_URL=http://127.0.0.1:1"}, []string{"AWS_REGION=us-east-1", "AWS_ENDPOINT_URL=http://127.0.0.1:1"}},
		{"extra follows base so it wins", []string{"A=1"}, []string{"A=2"}, []string{"A=1", "A=2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := emulatorEnv(tt.base, tt.extra); !slices.Equal(got, tt.want) {
				t.Errorf("emulatorEnv(%q, %q) = %q, want %q", tt.base, tt.extra, got, tt.want)
			}
		})
	}
}
