// Command onboard is the OnboardFunction Lambda: it validates a user's allowed
// addresses, stores them in DynamoDB and adds them to the portal allowlist.
package main

import (
	"context"

	"ipguard/internal/config"
	"ipguard/internal/wiring"
)

func main() {
	d, err := wiring.Load(context.Background(), config.Onboard)
	if err != nil {
		wiring.StartFailing(d.Log, err, config.Onboard)
		return
	}
	wiring.Start(d.Log, d.OnboardHandler())
}
