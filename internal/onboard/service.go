package onboard

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"ipguard/internal/allowlist"
	"ipguard/internal/ipguard"
	"ipguard/internal/lease"
)

// Store is the source of truth for users' allowlists.
type Store interface {
	GetUser(ctx context.Context, id string) (ipguard.User, bool, error)
	PutUser(ctx context.Context, u ipguard.User) error
}

// Portal is the DocSpace IP restrictions API.
type Portal interface {
	IPRestrictions(ctx context.Context) ([]ipguard.Restriction, error)
	IPRestrictionsEnabled(ctx context.Context) (bool, error)
	PutIPRestrictions(ctx context.Context, list []ipguard.Restriction, enable bool) error
}

// LeaseName is the lease that serialises every read-modify-write of the
// portal allowlist.
const LeaseName = "portal-allowlist"

// Service onboards users. All fields but Log and Now are required.
type Service struct {
	Store     Store
	Portal    Portal
	Leases    lease.Backend
	Rules     Rules
	LeaseWait time.Duration
	Now       func() time.Time
	Log       *slog.Logger
}

// Result is what an onboarding did; it is the Lambda's JSON response.
type Result struct {
	UserID              string      `json:"userId"`
	Email               string      `json:"email"`
	Entries             []string    `json:"entries"`
	Stored              bool        `json:"stored"`
	PortalAdded         []string    `json:"portalAdded"`
	NotPushed           []NotPushed `json:"notPushed"`
	PortalUpdated       bool        `json:"portalUpdated"`
	RestrictionsEnabled bool        `json:"restrictionsEnabled"`
	Warnings            []string    `json:"warnings"`
}

// Handle decodes an invocation payload and onboards it.
func (s *Service) Handle(ctx context.Context, payload []byte) (Result, error) {
	req, err := DecodeRequest(payload)
	if err != nil {
		return Result{}, err
	}
	return s.Onboard(ctx, req)
}

// Onboard validates req and, only if all of it is valid, stores the user's
// entries (replacing earlier ones) and adds their addresses to the portal.
//
// Bad input is an EInvalid error and nothing is written. The portal's list is
// read, merged and written under a lease, so concurrent onboardings cannot
// erase each other's additions. When nothing would change, nothing is
// written. A failure after the user was stored leaves the stored record whole;
// sending the same request again completes the portal update.
func (s *Service) Onboard(ctx context.Context, req Request) (Result, error) {
	id, err := canonicalID(req.ID)
	if err != nil {
		return Result{}, err
	}
	email, err := canonicalEmail(req.Email)
	if err != nil {
		return Result{}, err
	}
	entries, err := allowlist.ParseList("allowedIps", req.AllowedIPs, s.Rules.Limits)
	if err != nil {
		return Result{}, err
	}
	res := Result{UserID: id, Email: email, Entries: allowlist.Strings(entries),
		PortalAdded: []string{}, NotPushed: []NotPushed{}, Warnings: []string{}}

	wait := s.LeaseWait
	if dl, ok := ctx.Deadline(); ok && wait > time.Until(dl)/2 {
		wait = time.Until(dl) / 2 // leave the other half for the work itself
	}
	held, err := lease.Acquire(ctx, s.Leases, LeaseName, lease.Options{Wait: wait})
	if err != nil {
		return Result{}, ipguard.Errorf(ipguard.ErrorCode(err), "onboard %s: acquire the portal allowlist lease: %w", id, err)
	}
	defer func() {
		if err := held.Release(ctx); err != nil {
			s.log().WarnContext(ctx, "release lease", "lease", LeaseName, "error", err)
		}
	}()

	if res.Stored, err = s.store(ctx, id, email, res.Entries); err != nil {
		return Result{}, err
	}

	// Read the portal only now, under the lease: what an earlier holder
	// wrote is visible.
	current, err := s.Portal.IPRestrictions(ctx)
	if err != nil {
		return Result{}, s.portalErr(id, "read the portal allowlist", err)
	}
	enabled, err := s.Portal.IPRestrictionsEnabled(ctx)
	if err != nil {
		return Result{}, s.portalErr(id, "read the portal restriction setting", err)
	}
	plan := PlanPortal(current, enabled, entries, s.Rules)
	res.NotPushed = append(res.NotPushed, plan.NotPushed...)
	res.Warnings = append(res.Warnings, plan.Warnings...)
	res.RestrictionsEnabled = enabled
	if plan.Put {
		if err := s.Portal.PutIPRestrictions(ctx, plan.List, plan.Enable); err != nil {
			return Result{}, s.portalErr(id, "update the portal allowlist", err)
		}
		if err := s.verify(ctx, plan); err != nil {
			return Result{}, s.portalErr(id, "check the portal allowlist after the update", err)
		}
		res.PortalUpdated = true
		res.PortalAdded = append(res.PortalAdded, plan.Added...)
		res.RestrictionsEnabled = plan.Enable
	}
	s.log().InfoContext(ctx, "onboarded", "userId", id, "entries", len(res.Entries), "stored", res.Stored,
		"portalAdded", len(res.PortalAdded), "notPushed", len(res.NotPushed), "portalUpdated", res.PortalUpdated,
		"restrictionsEnabled", res.RestrictionsEnabled)
	return res, nil
}

// store writes the user's record unless it already holds exactly these
// values, keeping the original creation time. It reports whether it wrote.
func (s *Service) store(ctx context.Context, id, email string, entries []string) (bool, error) {
	old, found, err := s.Store.GetUser(ctx, id)
	if err != nil {
		return false, err
	}
	if found && old.Email == email && slices.Equal(old.Entries, entries) {
		return false, nil
	}
	now := s.now().UTC()
	u := ipguard.User{ID: id, Email: email, Entries: entries, CreatedAt: now, UpdatedAt: now}
	if found && !old.CreatedAt.IsZero() {
		u.CreatedAt = old.CreatedAt
	}
	return true, s.Store.PutUser(ctx, u)
}

// verify re-reads the list and checks every planned address arrived.
func (s *Service) verify(ctx context.Context, p Plan) error {
	got, err := s.Portal.IPRestrictions(ctx)
	if err != nil {
		return err
	}
	have := make(map[string]bool, len(got))
	for _, r := range got {
		have[r.IP] = true
	}
	for _, r := range p.List {
		if !have[r.IP] {
			return ipguard.Errorf(ipguard.EUnavailable, "the portal did not keep %s", r.IP)
		}
	}
	return nil
}

func (s *Service) portalErr(id, what string, err error) error {
	code := ipguard.ErrorCode(err)
	return ipguard.Errorf(code, "onboard %s: stored in DynamoDB, but could not %s (send the same request again to finish): %w", id, what, err)
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) log() *slog.Logger { return ipguard.LoggerOrDiscard(s.Log) }
