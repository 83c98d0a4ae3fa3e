// Command audit is the AuditFunction Lambda: it checks the portal's recent
// logins against each user's allowlist and publishes violations to SNS once.
package main

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/sns"

	"ipguard/internal/audit"
	"ipguard/internal/config"
	"ipguard/internal/lambdafn"
	"ipguard/internal/snsalert"
)

func main() {
	d, err := lambdafn.Load(context.Background(), config.Audit)
	if err != nil {
		lambdafn.StartFailing(d.Log, err)
		return
	}
	a := d.Config.Audit
	svc := &audit.Service{
		Source:    d.Portal,
		Store:     d.Store,
		Publisher: snsalert.New(sns.NewFromConfig(d.AWS), a.TopicARN),
		Leases:    d.Store,
		Settings: audit.Settings{
			Portal:         d.Config.DocSpace.Host,
			Overlap:        a.Overlap,
			Lookback:       a.Lookback,
			AlertRetention: a.AlertRetention,
			DeadlineMargin: a.DeadlineMargin,
			Policy:         audit.Policy{AlertUnknownUsers: a.AlertUnknownUsers, FailedLoginThreshold: a.FailedLoginThreshold},
		},
		Log: d.Log,
	}
	lambdafn.Start(d.Log, svc.Handle)
}
