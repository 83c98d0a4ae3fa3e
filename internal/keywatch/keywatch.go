// Package keywatch watches the DocSpace API key the functions use: it alerts
// before the key expires and turns an inactive or expired key into a
// configuration error that names the key (never the key itself).
//
// Each audit run asks the portal about its own key (Source.CurrentKey). The
// alert thresholds are 14, 7 and 1 days before expiry:
//
//	expiry − 14d ────────── − 7d ────────── − 1d ──────── expiry
//	   │ alert (medium)        │ alert (medium) │ alert (high) │ ConfigurationError
//
// Each threshold is alerted once per key and expiry date (Store records it
// after the alert was published). A run that first sees the key past several
// thresholds sends one alert, for the closest, and records the others too.
package keywatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"ipguard/internal/humantext"
	"ipguard/internal/ipguard"
	"ipguard/internal/snsalert/snsmessage"
)

// Kind is the alert kind of an expiring key.
const Kind = "api_key_expiring"

// Thresholds are the days before expiry at which an alert goes out, widest first.
var Thresholds = []int{14, 7, 1}

// ErrNotSupported is what Source returns when the portal cannot describe the
// key (DocSpace older than v3.1.1 answers 404): the key is then not watched,
// and the run says so in a warning.
var ErrNotSupported = errors.New("the portal cannot describe its API keys (GET keys/@self needs DocSpace v3.1.1 or later)")

// ErrRefused is what Source returns (wrapped) when the portal refused the
// key altogether (401): an expired or deactivated key cannot describe itself.
var ErrRefused = errors.New("the portal refused the API key")

// Key is what the portal says about the key, without the key itself.
type Key struct {
	ID        string
	Name      string    // as the portal's owner named it
	Postfix   string    // its last characters, e.g. "ab12"
	ExpiresAt time.Time // zero: never expires
	IsActive  bool
}

// Source describes the key the portal client authenticates with.
type Source interface {
	// CurrentKey returns the key. It returns an error for which
	// errors.Is(err, ErrNotSupported) when the portal cannot tell, and one
	// for which errors.Is(err, ErrRefused) when the portal refused the key;
	// with the latter, and when the portal did not answer now, the Key may
	// still carry the Postfix of the key in use (see PostfixOf).
	CurrentKey(ctx context.Context) (Key, error)
}

// Store remembers what the watch saw and sent.
type Store interface {
	// KeyAlertSent reports whether the alert for threshold days before the
	// key's expiry (key id and expiry together identify it) was recorded.
	KeyAlertSent(ctx context.Context, k Key, threshold int) (bool, error)
	// RecordKeyAlert records that alert; it is kept until well after the
	// expiry. Recording it again is harmless.
	RecordKeyAlert(ctx context.Context, k Key, threshold int, at time.Time) error
	// SaveKey keeps the key's description for the status operation and for
	// naming the key once the portal refuses it.
	SaveKey(ctx context.Context, k Key, seen time.Time) error
	// LastKey returns the description SaveKey kept last; ok is false if none.
	LastKey(ctx context.Context) (k Key, seen time.Time, ok bool, err error)
}

// Publisher sends one alert to the alert topic.
type Publisher interface {
	// Publish sends a once and returns its message id. It makes one
	// attempt and never resends on its own after a lost answer (the caller
	// decides whether to send again). An error is classified: EInternal for
	// an alert the topic would refuse (rendered wrongly), EConfig for a
	// missing or refused topic, EUnavailable when the service failed or did
	// not answer (the message may or may not have gone out).
	Publish(ctx context.Context, a ipguard.Alert) (string, error)
}

// Watch checks the key. Source, Store and Publisher are required.
type Watch struct {
	Source    Source
	Store     Store
	Publisher Publisher
	Portal    string // the portal URL, named in alerts
	Now       func() time.Time
	Log       *slog.Logger
}

// Report is what one check found; it is part of the audit's result.
type Report struct {
	Name       string `json:"name,omitempty"`
	Postfix    string `json:"postfix,omitempty"`
	ExpiresAt  string `json:"expiresAt,omitempty"` // RFC3339; empty: never expires or unknown
	DaysLeft   *int   `json:"daysLeft,omitempty"`
	AlertsSent []int  `json:"alertsSent,omitempty"` // thresholds alerted by this run
	Warning    string `json:"warning,omitempty"`
}

// StaleAfter is how long the key may go unchecked before a portal that does
// not answer keys/@self is an error (see Check): one day. A key that expires
// within 14 days of the last check that succeeded was alerted by that check,
// so a check that fails for a day still leaves the alert at least 13 days
// before expiry, and at most a day of passing trouble is only a warning.
const StaleAfter = 24 * time.Hour

// Check asks the portal about the key and alerts when it is about to expire.
//
// It returns an EConfig error naming the key (name and postfix) when the key
// is inactive or expired, or refused by the portal (then named from the last
// description saved, if any). A portal that cannot describe keys is a
// warning in the Report, not an error. A portal that does not answer now
// (429, 5xx, no answer in time: EUnavailable, or a deadline) is a warning
// while a check of this key succeeded within StaleAfter (the next run checks
// again), and an EUnavailable error saying since when the key is unchecked
// once none did (or none ever did, or the store cannot say), or saying
// which expiry alert is due unsent. Publishing or recording failures are
// returned as they come (their code classifies them); an alert whose record
// failed may be sent again by the next run.
func (w *Watch) Check(ctx context.Context) (Report, error) {
	now := w.now()
	k, err := w.Source.CurrentKey(ctx)
	switch {
	case errors.Is(err, ErrNotSupported):
		return Report{Warning: "API key not watched: " + ErrNotSupported.Error() + "; check its expiry in the portal by hand"}, nil
	case errors.Is(err, ErrRefused):
		// A refused key cannot describe itself: name it from what the last
		// run saw, if that was this key, else by its last characters.
		last, _, ok, lerr := w.Store.LastKey(ctx)
		if lerr == nil && ok && (k.Postfix == "" || k.Postfix == last.Postfix) {
			return Report{}, refusedError(last, now, err)
		}
		if k.Postfix != "" {
			return Report{}, refusedError(k, now, err)
		}
		return Report{}, err // the client's own error already says what to check
	case ipguard.Passing(err):
		return w.unanswered(ctx, now, k, err)
	case err != nil:
		return Report{}, err
	}
	rep := Report{Name: safe(k.Name), Postfix: safe(k.Postfix)}
	if err := w.Store.SaveKey(ctx, k, now); err != nil {
		w.log().Warn("keywatch: could not save the key's description for the status operation", "error", err)
	}
	if !k.IsActive || (!k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt)) {
		return rep, refusedError(k, now, nil)
	}
	if k.ExpiresAt.IsZero() {
		return rep, nil
	}
	rep.ExpiresAt = k.ExpiresAt.UTC().Format(time.RFC3339)
	days := DaysLeft(k.ExpiresAt, now)
	rep.DaysLeft = &days

	crossed := crossedThresholds(k.ExpiresAt, now)
	if len(crossed) == 0 {
		return rep, nil
	}
	closest := crossed[len(crossed)-1]
	sent, err := w.Store.KeyAlertSent(ctx, k, closest)
	if err != nil {
		return rep, ipguard.Errorf(ipguard.ErrorCode(err), "keywatch: read key alert record: %w", err)
	}
	if sent {
		return rep, nil
	}
	if _, err := w.Publisher.Publish(ctx, Alert(w.Portal, k, now)); err != nil {
		return rep, ipguard.Errorf(ipguard.ErrorCode(err), "keywatch: publish the key expiry alert: %w", err)
	}
	rep.AlertsSent = append(rep.AlertsSent, closest)
	for _, th := range crossed {
		if err := w.Store.RecordKeyAlert(ctx, k, th, now); err != nil {
			return rep, ipguard.Errorf(ipguard.ErrorCode(err), "keywatch: the key expiry alert was sent but not recorded (the next run may send it again): %w", err)
		}
	}
	w.log().Warn("DocSpace API key expires soon", "keyName", rep.Name, "keyPostfix", rep.Postfix,
		"expiresAt", rep.ExpiresAt, "daysLeft", days, "threshold", closest)
	return rep, nil
}

// unanswered is Check's answer when the portal did not answer now (err): a
// warning while the last check that succeeded (the time SaveKey kept) is
// within StaleAfter and was of this key, and no expiry alert of that key is
// due unsent (alertDue), else an EUnavailable error. k is
// what the Source could tell of the key in use without the portal (its
// Postfix, from the secret, or nothing): a key whose last characters differ
// from the last one checked (a rotated key) has never been checked, so
// nothing was alerted of its expiry.
func (w *Watch) unanswered(ctx context.Context, now time.Time, k Key, err error) (Report, error) {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second) // the run's own deadline may be what failed
	defer cancel()
	last, seen, ok, lerr := w.Store.LastKey(lctx)
	switch {
	case lerr != nil:
		return Report{}, ipguard.Errorf(ipguard.EUnavailable, "the API key could not be checked (%v), and when it was last checked is unknown (%v)", err, lerr)
	case !ok:
		return Report{}, ipguard.Errorf(ipguard.EUnavailable, "the API key could not be checked (%v), and it has never been checked: its expiry is unknown", err)
	case k.Postfix != "" && last.Postfix != "" && k.Postfix != last.Postfix:
		return Report{}, ipguard.Errorf(ipguard.EUnavailable, "the API key ending in %s could not be checked (%v), and it has never been checked (the last check, at %s, was of the key ending in %s): its expiry is unknown",
			safe(k.Postfix), err, seen.UTC().Format(time.RFC3339), safe(last.Postfix))
	case now.Sub(seen) > StaleAfter:
		return Report{}, ipguard.Errorf(ipguard.EUnavailable, "the API key could not be checked (%v), and it has not been checked since %s (more than %v): its expiry may come unalerted",
			err, seen.UTC().Format(time.RFC3339), StaleAfter)
	}
	if th, due := w.alertDue(lctx, last, now); due {
		return Report{}, ipguard.Errorf(ipguard.EUnavailable, "the API key could not be checked (%v), and its expiry alert (%d days before %s, as last checked at %s) has not been sent",
			err, th, last.ExpiresAt.UTC().Format(time.RFC3339), seen.UTC().Format(time.RFC3339))
	}
	w.log().Warn("keywatch: the portal did not answer about the API key; the next run checks again", "error", err.Error(), "lastChecked", seen.UTC().Format(time.RFC3339))
	return Report{Warning: fmt.Sprintf("API key not checked now: %v; last checked at %s; the next run checks again", err, seen.UTC().Format(time.RFC3339))}, nil
}

// alertDue reports whether the expiry alert of the closest threshold that k
// (as last checked) has crossed at now is not recorded as sent (or whether
// it was cannot be read): the last check's alert failed, or a threshold came
// since. Then the alert is due and a check the portal does not answer is no
// passing trouble.
func (w *Watch) alertDue(ctx context.Context, k Key, now time.Time) (threshold int, due bool) {
	if k.ExpiresAt.IsZero() {
		return 0, false
	}
	crossed := crossedThresholds(k.ExpiresAt, now)
	if len(crossed) == 0 {
		return 0, false
	}
	threshold = crossed[len(crossed)-1]
	sent, err := w.Store.KeyAlertSent(ctx, k, threshold)
	return threshold, err != nil || !sent
}

// crossedThresholds are the thresholds (widest first) whose time has come.
func crossedThresholds(expires, now time.Time) []int {
	var out []int
	for _, th := range Thresholds {
		if !now.Before(expires.Add(-time.Duration(th) * 24 * time.Hour)) {
			out = append(out, th)
		}
	}
	return out
}

// DaysLeft is the number of whole days from now to expires (0 in the last day).
func DaysLeft(expires, now time.Time) int {
	if !now.Before(expires) {
		return 0
	}
	return int(expires.Sub(now) / (24 * time.Hour))
}

// Severity is high within a day of expiry, else medium.
func Severity(expires, now time.Time) string {
	if now.Add(24 * time.Hour).Before(expires) {
		return "medium"
	}
	return "high"
}

// PostfixLen is how many of the key's last characters the portal shows
// (keyPostfix); too few to be a secret.
const PostfixLen = 4

// PostfixOf is the portal's postfix of the key secret: its last PostfixLen characters.
func PostfixOf(secret string) string {
	secret = strings.TrimSpace(secret)
	if len(secret) <= 2*PostfixLen {
		return "" // a key this short would be given away by its postfix
	}
	return secret[len(secret)-PostfixLen:]
}

// refusedError is the EConfig error of an inactive, expired or refused key.
func refusedError(k Key, now time.Time, cause error) error {
	state := "is inactive"
	if !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt) {
		state = "expired on " + k.ExpiresAt.UTC().Format(time.RFC3339)
	} else if cause != nil {
		state = "was refused by the portal (expired, deactivated or deleted)"
	}
	name := `"` + safe(k.Name) + `"`
	if k.Name == "" {
		name = "(name unknown: the portal never described it to IP Guard)"
	}
	return &ipguard.Error{Code: ipguard.EConfig, Err: cause, Message: fmt.Sprintf(
		"the DocSpace API key %s (ending in %s) %s: create a new key in DocSpace (Settings > Developer Tools > API keys, as the same user) and store it in the secret named by DOCSPACE_API_KEY_SECRET_ID",
		name, safe(k.Postfix), state)}
}

// Alert is the api_key_expiring alert for k at now.
func Alert(portal string, k Key, now time.Time) ipguard.Alert {
	days := DaysLeft(k.ExpiresAt, now)
	sev := Severity(k.ExpiresAt, now)
	name, postfix := safe(k.Name), safe(k.Postfix)
	when := fmt.Sprintf("in %d days", days)
	switch days {
	case 0:
		when = "within a day"
	case 1:
		when = "in 1 day"
	}
	exp := k.ExpiresAt.UTC().Format(time.RFC3339)
	action := "create a new API key in DocSpace (Settings > Developer Tools > API keys, as the same user, same scopes) and store it in the secret named by DOCSPACE_API_KEY_SECRET_ID before then; the functions pick it up within the secret cache TTL"
	body, _ := json.Marshal(map[string]any{
		"kind": Kind, "severity": sev, "portal": portal, "keyName": name, "keyPostfix": postfix,
		"expiresAt": exp, "daysLeft": days, "action": action,
	})
	subject := humantext.Line(fmt.Sprintf("[%s] DocSpace API key \"%s\" expires %s", strings.ToUpper(sev), name, when), snsmessage.MaxSubjectRunes)
	email := fmt.Sprintf("The DocSpace API key \"%s\" (ending in %s) of %s expires %s, at %s.\n\nWhen it expires, IP Guard stops: no onboarding, no audit, no alerts.\n\nWhat to do: %s.\n",
		name, postfix, portal, when, exp, action)
	sms := humantext.ASCII(fmt.Sprintf("IP Guard: DocSpace API key ...%s expires %s (%s). Rotate it.", postfix, when, k.ExpiresAt.UTC().Format("2006-01-02")), snsmessage.MaxSMSBytes)
	return ipguard.Alert{Subject: subject, Default: string(body), Email: email, SMS: sms, Severity: sev, Kinds: []string{Kind}}
}

// safe makes a portal-supplied name fit for a human: one line, at most 64
// bytes (see humantext.Line).
func safe(s string) string { return humantext.Line(strings.TrimSpace(s), 64) }

func (w *Watch) now() time.Time {
	if w.Now != nil {
		return w.Now().UTC()
	}
	return time.Now().UTC()
}

func (w *Watch) log() *slog.Logger { return ipguard.LoggerOrDiscard(w.Log) }
