package wiring

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"ipguard/internal/audit"
	"ipguard/internal/chatnotify"
	"ipguard/internal/config"
	"ipguard/internal/digest"
	"ipguard/internal/emf"
	"ipguard/internal/findingsbus"
	"ipguard/internal/ipguard"
	"ipguard/internal/loginarchive"
	"ipguard/internal/ocsf"
	"ipguard/internal/snsalert"
)

// Where findings go besides the alert topic (#18, README "Where findings
// go"): every alert passes one chain at the publisher seam,
//
//	findings bus ─► digest (audit) ─► alert topic ─► chat copy
//
// so the bus gets every finding (also those the digest holds back), the
// digest turns DIGEST_SEVERITIES findings into one message a day, and chat
// gets a copy of each message. The login archive is the audit's Archive.

// publisherPort is the publisher every domain service takes.
type publisherPort interface {
	Publish(ctx context.Context, a ipguard.Alert) (string, error)
}

// alertChain is the publisher chain of one function and its stateful parts.
type alertChain struct {
	Publisher publisherPort
	Bus       *findingsbus.Bus  // nil without FINDINGS_BUS_NAME
	Digest    *digest.Publisher // nil for onboarding or DIGEST_SEVERITIES=none
	Chat      *chatnotify.Tee   // nil without CHAT_TOPIC_ARN
}

// alertChain builds the chain to topicARN for the function fn that runs (its
// findings bus outbox: each role may write only its own items), with the
// daily digest only where withDigest (the audit's findings).
func (d Deps) alertChain(topicARN string, fn config.Function, withDigest bool) alertChain {
	f := d.Config.Findings
	var pub publisherPort = snsalert.New(d.snsClient(), topicARN)
	var c alertChain
	if f.ChatTopicARN != "" {
		c.Chat = &chatnotify.Tee{Next: pub, Chat: &chatnotify.Publisher{API: d.snsClient(), Topic: f.ChatTopicARN}, Log: d.Log}
		pub = c.Chat
	}
	// The digest also lists people without an allowlist
	// (UNKNOWN_USER_POLICY=digest), even with DIGEST_SEVERITIES=none.
	peopleDigest := fn == config.Audit && d.Config.Audit.UnknownUserMessages() == config.UnknownDigest
	if withDigest && (len(f.DigestSeverities) > 0 || peopleDigest) {
		sev := map[string]bool{}
		for _, s := range f.DigestSeverities {
			sev[s] = true
		}
		c.Digest = &digest.Publisher{Next: pub, Store: d.Store, Severities: sev, Hour: f.DigestHour, Portal: d.Config.DocSpace.Host, Log: d.Log}
		pub = c.Digest
	}
	if f.BusName != "" {
		c.Bus = &findingsbus.Bus{API: eventbridge.NewFromConfig(d.AWS), Name: f.BusName, Outbox: findingsbus.StoreOutbox{Store: d.Store, PK: outboxPK(fn)}, Log: d.Log}
		pub = &findingsbus.Publisher{Next: pub, Bus: c.Bus, Portal: d.Config.DocSpace.Host}
	}
	c.Publisher = pub
	return c
}

// withoutDigest is the chain's publisher without its digest step (for
// alerts the digest never holds back, the key watch's): the same findings
// bus and chat copy, so what they fail to deliver is counted with the run's
// (busMetrics).
func (c alertChain) withoutDigest(d Deps) publisherPort {
	if c.Digest == nil {
		return c.Publisher
	}
	next := publisherPort(c.Digest.Next)
	if c.Bus != nil {
		next = &findingsbus.Publisher{Next: next, Bus: c.Bus, Portal: d.Config.DocSpace.Host}
	}
	return next
}

// outboxPK is the findings bus outbox of the function fn.
func outboxPK(fn config.Function) string {
	if fn == config.Onboard {
		return findingsbus.OnboardOutboxPK
	}
	return findingsbus.OutboxPK
}

// retryOutbox sends what waits in the running function's findings bus
// outbox (onboarding: at the start of each invocation); trouble is logged,
// the entries stay for the next one.
func (c alertChain) retryOutbox(ctx context.Context, d Deps) {
	if c.Bus == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	sent, waiting, err := c.Bus.Retry(ctx)
	if err != nil {
		d.Log.WarnContext(ctx, "findings bus outbox not sent", "sent", sent, "waiting", waiting, "error", err)
	}
}

// busMetrics is BusUndelivered: the findings the bus refused during the
// invocation (kept in the outbox, or lost) and those still waiting in the
// outbox after its retry; nothing without a findings bus. With chat, also
// ChatUndelivered: the chat copies that failed during the invocation.
func (c alertChain) busMetrics() []emf.Metric {
	var ms []emf.Metric
	if c.Bus != nil {
		ms = append(ms, count(MetricBusUndelivered, c.Bus.TakeUndelivered()))
	}
	if c.Chat != nil {
		ms = append(ms, count(MetricChatUndelivered, c.Chat.TakeUndelivered()))
	}
	return ms
}

// loginArchive is the audit's Archive: nil without ARCHIVE_BUCKET.
func (d Deps) loginArchive() audit.Archiver {
	f := d.Config.Findings
	if f.ArchiveBucket == "" {
		return nil
	}
	client := s3.NewFromConfig(d.AWS, func(o *s3.Options) {
		// An endpoint of one's own (AWS_ENDPOINT_URL: an S3-compatible
		// store) is addressed by path; AWS's own by virtual host.
		o.UsePathStyle = aws.ToString(o.BaseEndpoint) != ""
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	return &loginarchive.Archive{API: client, Bucket: f.ArchiveBucket, Prefix: f.ArchivePrefix, Portal: ocsf.Host(d.Config.DocSpace.Host)}
}

// chainTimeout bounds the outbox retry before an audit and the digest after
// it, so neither eats the audit's time (what is left waits for the next run).
const chainTimeout = 15 * time.Second

// digestMinLeft: the digest is sent only with this much time left.
const digestMinLeft = 10 * time.Second

// beforeAudit sends what waits in the findings bus outbox; trouble is a
// warning of the run (the entries stay for the next one). The counts go to
// props: EMF properties of the run's metrics line, which no alarm reads. An
// outbox that could not be read has no count of waiting entries (not 0):
// outboxUnreadable instead, and BusUndelivered counts it (Bus.Retry).
func (c alertChain) beforeAudit(ctx context.Context, props map[string]any) []string {
	if c.Bus == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, chainTimeout)
	defer cancel()
	sent, waiting, err := c.Bus.Retry(ctx)
	props["outboxSent"] = sent
	if errors.Is(err, findingsbus.ErrOutboxUnreadable) {
		props["outboxUnreadable"] = true
		return []string{fmt.Sprintf("%s; how many events wait is unknown; the next run tries again", err)}
	}
	props["outboxWaiting"] = waiting
	if err != nil {
		return []string{fmt.Sprintf("findings bus: %d event(s) still wait in the outbox (%d sent now): %s; the next run tries again", waiting, sent, err)}
	}
	return nil
}

// afterAudit sends the digest whose hour has come, after a scheduled run
// that finished its work (the days sent go to props). A run that stopped at
// its deadline margin, or has less than digestMinLeft left, leaves the
// digest to the next run: the time left belongs to the key check and the
// run's records.
//
// undelivered is 1 when the digest failed (AlertsUndelivered, alarmed: a
// digest that fails run after run must page someone, not only warn).
func (c alertChain) afterAudit(ctx context.Context, res audit.Result, props map[string]any) (warnings []string, undelivered int) {
	if c.Digest == nil || res.Backfill || res.Skipped || !res.Complete {
		return nil, 0
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < digestMinLeft {
		return nil, 0
	}
	ctx, cancel := context.WithTimeout(ctx, chainTimeout)
	defer cancel()
	days, err := c.Digest.SendDue(ctx)
	if len(days) > 0 {
		props["digestsSent"] = days
	}
	if err != nil {
		return []string{"daily digest not sent: " + err.Error() + "; the next run tries again"}, 1
	}
	return nil, 0
}
