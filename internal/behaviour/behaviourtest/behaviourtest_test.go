package behaviourtest

import (
	"testing"
	"time"
)

func TestFakesKeepTheContract(t *testing.T) {
	Contract(t, func(*testing.T) Stores {
		e := NewEpisodes()
		e.Now = time.Now
		return struct {
			*BaselineStore
			*EpisodeStore
		}{NewBaselines(), e}
	})
}
