package ipguard

// Alert is one SNS message: one body per protocol. Default is the JSON body
// every other protocol (and the SQS/Lambda subscribers) receives.
type Alert struct {
	Subject string
	Default string
	Email   string
	SMS     string
}
