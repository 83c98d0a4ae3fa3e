package onboard

import (
	"context"
	"math/rand/v2"
	"time"
)

// What the dev-portal run of the model test (model_devportal_test.go, in
// package onboard_test: internal/docspace imports this package) shares with
// TestReconcilerModel: the steps, their generator, the address pools, the
// sync bound and the shrinker, and the model of what the requests asked
// for: each step's request, how an answer changes the model, what must be
// stored and on the portal.

type ModelStep = modelStep

type ModelUsers = askedUsers

const (
	ModelSyncBound = modelSyncBound
)

func RandomModelStep(r *rand.Rand) ModelStep { return randomStep(r) }
func ModelUserAddr(i int) string             { return userAddr(i) }
func ModelManualAddr(i int) string           { return manualAddr(i) }

func ShrinkModel(seq []ModelStep, run func([]ModelStep) string) []ModelStep {
	return shrinkWith(seq, run)
}

func ModelRequest(s ModelStep, now time.Time) string { return s.request(now) }
func ModelAnswered(us ModelUsers, s ModelStep, now time.Time, err error) error {
	return us.answered(s, now, err)
}
func ModelStored(ctx context.Context, us ModelUsers, store Store, now time.Time) string {
	return us.stored(ctx, store, now)
}
func ModelActive(us ModelUsers, now time.Time) map[string]bool { return us.active(now) }
