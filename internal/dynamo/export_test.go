package dynamo

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Table returns the table name s writes to, for tests that inspect raw items.
func Table(s *Store) string { return s.table }

// SetMaxSpans sets the bound of alerted spans per address for a test and
// returns a function that restores it.
func SetMaxSpans(n int) func() { old := maxSpans; maxSpans = n; return func() { maxSpans = old } }

// BumpWithoutLog bumps as a version before the change log did (adds to
// version only): a rollback's, or a mixed deployment's, bump.
func BumpWithoutLog(s *Store) error {
	_, err := s.bumpVersionAddingNoLog(context.Background(), 0)
	return err
}

// FillChangeLog bumps the version once per id with the log naming them,
// in one write (as len(ids) bumps would leave it, minus the trims): for the
// item size test.
func FillChangeLog(s *Store, ids []string) error {
	_, err := s.api.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
		TableName:        aws.String(s.table),
		Key:              key(portalStatePK),
		UpdateExpression: aws.String("SET changed = :ids, changedBase = if_not_exists(version, :zero) ADD version :n"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":ids": strList(ids), ":zero": num(0), ":n": num(int64(len(ids))),
		},
	})
	return err
}
