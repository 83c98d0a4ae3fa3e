package onboard

import "math/rand/v2"

// What the dev-portal run of the model test (model_devportal_test.go, in
// package onboard_test: internal/docspace imports this package) shares with
// TestReconcilerModel: the steps, their generator, the address pools, the
// sync bound and the shrinker.

type ModelStep = modelStep

const (
	ModelSyncBound = modelSyncBound
)

func RandomModelStep(r *rand.Rand) ModelStep { return randomStep(r) }
func ModelUserAddr(i int) string             { return userAddr(i) }
func ModelManualAddr(i int) string           { return manualAddr(i) }

func ShrinkModel(seq []ModelStep, run func([]ModelStep) string) []ModelStep {
	return shrinkWith(seq, run)
}
