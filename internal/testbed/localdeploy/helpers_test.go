package localdeploy

import (
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
)

func snsPublish(topic string) *sns.PublishInput {
	return &sns.PublishInput{TopicArn: aws.String(topic), Message: aws.String("hello"), Subject: aws.String("s")}
}

func processAlive(pid int) bool {
	return syscall.Kill(pid, 0) == nil
}
