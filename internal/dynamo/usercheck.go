package dynamo

import (
	"context"
	"time"

	"ipguard/internal/onboard"
)

// UserCheckPK keys the users-left rotation's place (onboard.UserChecks):
//
//	usercheck#sync   data: JSON {"after": last user id checked, "at": RFC3339, "notice": failure alerted}, updatedAt
//
// Only the onboarding function writes it (IAM: the "usercheck#" prefix).
const UserCheckPK = userCheckPrefix + "sync"

type storedCursor struct {
	After  string    `json:"after"`
	At     time.Time `json:"at"`
	Notice string    `json:"notice,omitempty"` // the check's failure last alerted
	// The blast radius's budget (onboard.CheckCursor).
	Offboarded      int       `json:"offboarded,omitempty"`
	OffboardedSince time.Time `json:"offboardedSince,omitzero"`
	Halted          time.Time `json:"halted,omitzero"`
}

// UserCheckCursor implements onboard.CheckCursorStore (strongly consistent
// read; the zero value when none is stored).
func (s *Store) UserCheckCursor(ctx context.Context) (onboard.CheckCursor, error) {
	var v storedCursor
	if _, err := s.getJSON(ctx, "get users-left rotation", UserCheckPK, &v); err != nil {
		return onboard.CheckCursor{}, err
	}
	return onboard.CheckCursor{After: v.After, At: v.At, Notice: v.Notice,
		Offboarded: v.Offboarded, OffboardedSince: v.OffboardedSince, Halted: v.Halted}, nil
}

// SaveUserCheckCursor implements onboard.CheckCursorStore (one PutItem).
func (s *Store) SaveUserCheckCursor(ctx context.Context, c onboard.CheckCursor) error {
	return s.putJSON(ctx, "save users-left rotation", UserCheckPK, storedCursor{After: c.After, At: c.At.UTC(), Notice: c.Notice,
		Offboarded: c.Offboarded, OffboardedSince: c.OffboardedSince.UTC(), Halted: c.Halted.UTC()})
}
