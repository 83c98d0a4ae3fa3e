// Command audit is the AuditFunction Lambda: it checks the portal's recent
// logins against each user's allowlist and publishes violations to SNS once;
// {"action": "status"} answers how the audit is doing instead.
package main

import (
	"context"

	"ipguard/internal/config"
	"ipguard/internal/wiring"
)

func main() {
	d, err := wiring.Load(context.Background(), config.Audit)
	if err != nil {
		wiring.StartFailing(d.Log, err, config.Audit)
		return
	}
	wiring.Start(d.Log, d.AuditFunction())
}
