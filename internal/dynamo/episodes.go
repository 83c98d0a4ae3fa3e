package dynamo

import (
	"context"
	"time"

	"ipguard/internal/behaviour"
)

// EpisodePrefix keys a user's open episodes of logins outside the
// allowlist (#21 §2): "episode#<userId>", with `data` S (the JSON of
// behaviour.Episodes: at most behaviour.MaxEpisodes episodes, a few KB),
// `updatedAt` S and `expiresAt` N (EPISODE_HOURS after the newest episode's
// last miss: a closed episode goes away on its own).
const EpisodePrefix = behaviour.EpisodePrefix

// Episodes implements behaviour.EpisodeStore: one BatchGetItem per 100
// ids. An item that cannot be decoded, or has expired but is not deleted
// yet, is treated as absent.
func (s *Store) Episodes(ctx context.Context, ids []string) (map[string]behaviour.Episodes, error) {
	return readUserItems(ctx, s, "episodes", EpisodePrefix, ids, true, func(e *behaviour.Episodes, id string) { e.UserID = id })
}

// SaveEpisodes implements behaviour.EpisodeStore: BatchWriteItem in chunks
// of 25. A user whose episodes all closed has an item that expires now.
func (s *Store) SaveEpisodes(ctx context.Context, es []behaviour.Episodes, hours int) error {
	return writeUserItems(ctx, s, "episode", EpisodePrefix, es, func(e behaviour.Episodes, now time.Time) (string, time.Time) {
		exp := e.Expires(hours)
		if exp.IsZero() {
			exp = now
		}
		return e.UserID, exp
	}, 1)
}
