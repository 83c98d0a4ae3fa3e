package digest_test

import (
	"encoding/json"

	"ipguard/internal/audit"
)

func jsonPayload(fs []audit.Finding) (string, error) {
	b, err := json.Marshal(audit.Payload{Portal: "portal.example.com", Severity: "low", Events: fs})
	return string(b), err
}
