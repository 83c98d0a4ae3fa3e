// Package localdeploy stands the whole product up on this machine, the way
// the SAM template deploys it to AWS: moto server for DynamoDB, SNS, SQS and
// Secrets Manager (reached through AWS_ENDPOINT_URL only), the table created
// from template.yaml's own key schema, the API key in a secret, the alert
// topic with an SQS queue subscribed as a stand-in mailbox, and the dev
// portal on a loopback port. Integration tests, end-to-end tests and
// `make demo` all use it. It is not part of either Lambda function.
package localdeploy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"ipguard/internal/dynamo"
	"ipguard/internal/testbed/devportal"
	"ipguard/internal/testbed/localaws"
	"ipguard/internal/testbed/samtemplate"
)

// Resource names of the local deployment.
const (
	TableName  = "docspace-ip-guard-allowlist"
	SecretName = "docspace-ip-guard/api-key"
	TopicName  = "docspace-ip-guard-alerts"
	QueueName  = "docspace-ip-guard-mailbox"
	Region     = "us-east-1"
)

// Stack is a running local deployment. Close stops what Start started.
type Stack struct {
	Moto      *localaws.Moto
	AWS       aws.Config // SDK configuration pointing at moto (for the harness, not the product)
	Portal    *devportal.Portal
	PortalURL string // http://127.0.0.1:<port>
	APIKey    string // the admin API key stored in the secret
	SecretARN string
	TopicARN  string
	QueueURL  string
	Store     *dynamo.Store // the product's own store over the table, for checks
	DDB       *dynamodb.Client
	SNS       *sns.Client
	SQS       *sqs.Client
	SM        *secretsmanager.Client

	// AWSEndpoint is what the functions use as AWS_ENDPOINT_URL: a proxy in
	// front of moto that records SNS publishes.
	AWSEndpoint string

	ownMoto  bool
	portal   *http.Server
	front    *awsFront
	findings *Findings // StartFindings (findings.go)
}

// Options tune Start.
type Options struct {
	// Moto to use; nil starts one (and Close stops it).
	Moto *localaws.Moto
	// TZOffset is the dev portal's time zone (UTC offset).
	TZOffset time.Duration
}

// Start brings the stack up. On error nothing is left running.
func Start(ctx context.Context, opts Options) (s *Stack, err error) {
	s = &Stack{Moto: opts.Moto}
	defer func() {
		if err != nil {
			s.Close()
			s = nil
		}
	}()
	if s.Moto == nil {
		if s.Moto, err = localaws.StartMoto(ctx); err != nil {
			return s, err
		}
		s.ownMoto = true
	} else if err = s.Moto.Reset(ctx); err != nil {
		return s, err
	}
	s.AWS, err = awsconfig.LoadDefaultConfig(ctx,
		awsconfig.WithRegion(Region),
		awsconfig.WithBaseEndpoint(s.Moto.Endpoint),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")))
	if err != nil {
		return s, err
	}
	s.DDB = dynamodb.NewFromConfig(s.AWS)
	s.SNS = sns.NewFromConfig(s.AWS)
	s.SQS = sqs.NewFromConfig(s.AWS)
	s.SM = secretsmanager.NewFromConfig(s.AWS)
	s.Store = dynamo.New(s.DDB, TableName)

	if s.front, err = startFront(s.Moto.Endpoint); err != nil {
		return s, err
	}
	s.AWSEndpoint = s.front.url
	if err = s.createTable(ctx); err != nil {
		return s, err
	}
	if err = s.createSecret(ctx); err != nil {
		return s, err
	}
	if err = s.createTopic(ctx); err != nil {
		return s, err
	}
	return s, s.startPortal(opts.TZOffset)
}

func (s *Stack) createTable(ctx context.Context) error {
	path, err := samtemplate.FindTemplate()
	if err != nil {
		return err
	}
	def, err := samtemplate.Table(path, "AllowlistTable")
	if err != nil {
		return err
	}
	if _, err := s.DDB.CreateTable(ctx, def.CreateTableInput(TableName)); err != nil {
		return fmt.Errorf("create table: %w", err)
	}
	if ttl := def.TTLInput(TableName); ttl != nil {
		if _, err := s.DDB.UpdateTimeToLive(ctx, ttl); err != nil {
			return fmt.Errorf("enable TTL: %w", err)
		}
	}
	return nil
}

func (s *Stack) createSecret(ctx context.Context) error {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	s.APIKey = "sk-" + hex.EncodeToString(b[:])
	val, _ := json.Marshal(map[string]string{"apiKey": s.APIKey})
	out, err := s.SM.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(SecretName), SecretString: aws.String(string(val))})
	if err != nil {
		return fmt.Errorf("create secret: %w", err)
	}
	s.SecretARN = aws.ToString(out.ARN)
	return nil
}

func (s *Stack) createTopic(ctx context.Context) error {
	t, err := s.SNS.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(TopicName)})
	if err != nil {
		return fmt.Errorf("create topic: %w", err)
	}
	s.TopicARN = aws.ToString(t.TopicArn)
	// The stand-in mailbox: an SQS queue subscribed to the topic.
	q, err := s.SQS.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(QueueName)})
	if err != nil {
		return fmt.Errorf("create queue: %w", err)
	}
	s.QueueURL = aws.ToString(q.QueueUrl)
	attrs, err := s.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		return fmt.Errorf("queue ARN: %w", err)
	}
	arn := attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]
	if _, err := s.SNS.Subscribe(ctx, &sns.SubscribeInput{TopicArn: aws.String(s.TopicARN), Protocol: aws.String("sqs"), Endpoint: aws.String(arn)}); err != nil {
		return fmt.Errorf("subscribe queue: %w", err)
	}
	return nil
}

func (s *Stack) startPortal(tz time.Duration) error {
	s.Portal = devportal.New(devportal.Options{AdminKeys: []string{s.APIKey}, TZOffset: tz})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	s.PortalURL = "http://" + ln.Addr().String()
	s.portal = &http.Server{Handler: s.Portal.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go s.portal.Serve(ln)
	return nil
}

// FunctionEnv is the environment a function of this deployment runs with:
// the standard AWS variables (AWS_ENDPOINT_URL is the recording proxy in
// front of moto) and the function's own configuration, as the template sets
// it, pointing at the local resources. Later entries win.
func (s *Stack) FunctionEnv(extra ...string) []string {
	var env []string
	for _, kv := range s.Moto.Env() {
		if !strings.HasPrefix(kv, "AWS_ENDPOINT_URL=") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"AWS_ENDPOINT_URL="+s.AWSEndpoint,
		"DOCSPACE_API_HOST="+s.PortalURL,
		"DOCSPACE_ALLOW_HTTP=true", // the dev portal speaks plain http on loopback
		"DOCSPACE_API_KEY_SECRET_ID="+SecretName,
		"ALLOWLIST_TABLE="+TableName,
		"ALERT_TOPIC_ARN="+s.TopicARN,
		"LOG_LEVEL=warn",
	)
	if s.findings != nil {
		env = append(env, "FINDINGS_BUS_NAME="+s.findings.Bus, "ARCHIVE_BUCKET="+s.findings.Bucket)
	}
	return append(env, extra...)
}

// Close stops the dev portal and, if Start started it, moto.
func (s *Stack) Close() error {
	var errs []error
	if s.portal != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		errs = append(errs, s.portal.Shutdown(ctx))
	}
	if s.front != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		errs = append(errs, s.front.srv.Shutdown(ctx))
	}
	if s.ownMoto && s.Moto != nil {
		errs = append(errs, s.Moto.Stop())
	}
	return errors.Join(errs...)
}

// TablePart is one kind of item in the table: its key prefix (the pk up to
// its first '#'), how many items and their size as DynamoDB counts them
// (dynamo.ItemSize).
type TablePart struct {
	Prefix       string
	Items, Bytes int
}

// TableParts scans the table (as the harness, not the product) and counts
// its items per kind, the largest first. moto expires nothing by TTL: items
// past their expiresAt are counted too (DynamoDB deletes them within days).
func (s *Stack) TableParts(ctx context.Context) ([]TablePart, error) {
	by := map[string]*TablePart{}
	in := &dynamodb.ScanInput{TableName: aws.String(TableName)}
	for {
		page, err := s.DDB.Scan(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("scan the table: %w", err)
		}
		for _, item := range page.Items {
			pk := ""
			if v, ok := item["pk"].(*types.AttributeValueMemberS); ok {
				pk = v.Value
			}
			prefix, _, _ := strings.Cut(pk, "#")
			p := by[prefix]
			if p == nil {
				p = &TablePart{Prefix: prefix}
				by[prefix] = p
			}
			p.Items++
			p.Bytes += dynamo.ItemSize(item)
		}
		if len(page.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
	parts := make([]TablePart, 0, len(by))
	for _, p := range by {
		parts = append(parts, *p)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i].Bytes > parts[j].Bytes })
	return parts, nil
}
