// Command onboard is the OnboardFunction Lambda: it validates a user's allowed
// addresses, stores them in DynamoDB and adds them to the portal allowlist.
package main

import (
	"context"

	"ipguard/internal/config"
	"ipguard/internal/lambdafn"
	"ipguard/internal/onboard"
)

func main() {
	d, err := lambdafn.Load(context.Background(), config.Onboard)
	if err != nil {
		lambdafn.StartFailing(d.Log, err)
		return
	}
	p := d.Config.Portal
	svc := &onboard.Service{
		Store:     d.Store,
		Portal:    d.Portal,
		Leases:    d.Store,
		Rules:     onboard.Rules{MaxRangeAddresses: p.MaxRangeAddresses, Breakglass: p.Breakglass, Enforce: p.Enforce, Limits: p.Limits},
		LeaseWait: p.LeaseWait,
		Log:       d.Log,
	}
	lambdafn.Start(d.Log, svc.Handle)
}
