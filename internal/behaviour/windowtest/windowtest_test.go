package windowtest

import (
	"testing"

	"ipguard/internal/behaviour"
)

func TestFakeKeepsTheContract(t *testing.T) {
	Contract(t, func(*testing.T) behaviour.WindowStore { return New() })
}
