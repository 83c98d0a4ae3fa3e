// Command onboard is the OnboardFunction Lambda: it validates a user's allowed
// addresses, stores them in DynamoDB and adds them to the portal allowlist.
package main

import (
	"context"

	"ipguard/internal/config"
	"ipguard/internal/lambdafn"
)

func main() {
	d, err := lambdafn.Load(context.Background(), config.Onboard)
	if err != nil {
		lambdafn.StartFailing(d.Log, err)
		return
	}
	lambdafn.Start(d.Log, d.OnboardHandler())
}
