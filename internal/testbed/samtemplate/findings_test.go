package samtemplate

import (
	"testing"
)

// The login archive bucket (#18 §2): created only with ArchiveLogins and
// no bucket of one's own, private, encrypted, TLS only, and expiring after
// ArchiveRetentionDays; the chat topic exists only with ChatNotifications.
func TestArchiveBucketIsPrivateEncryptedTLSOnlyAndExpires(t *testing.T) {
	b := resource(t, "ArchiveBucket")
	if b["Condition"] != "CreateArchiveBucket" || b["DeletionPolicy"] != "Retain" {
		t.Errorf("Condition %v, DeletionPolicy %v; want CreateArchiveBucket, Retain", b["Condition"], b["DeletionPolicy"])
	}
	p := props(b)
	pab := mapOf(p["PublicAccessBlockConfiguration"])
	for _, k := range []string{"BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"} {
		if pab[k] != true {
			t.Errorf("PublicAccessBlockConfiguration.%s = %v", k, pab[k])
		}
	}
	sse := asList(mapOf(p["BucketEncryption"])["ServerSideEncryptionConfiguration"])
	if len(sse) != 1 || mapOf(mapOf(sse[0])["ServerSideEncryptionByDefault"])["SSEAlgorithm"] == nil {
		t.Errorf("BucketEncryption = %s", jsonText(p["BucketEncryption"]))
	}
	rules := asList(mapOf(p["LifecycleConfiguration"])["Rules"])
	if len(rules) != 1 || !sameJSON(mapOf(rules[0])["ExpirationInDays"], ref("ArchiveRetentionDays")) || mapOf(rules[0])["Status"] != "Enabled" {
		t.Errorf("LifecycleConfiguration = %s", jsonText(p["LifecycleConfiguration"]))
	}

	pol := props(resource(t, "ArchiveBucketPolicy"))
	denied := false
	for _, st := range asList(mapOf(pol["PolicyDocument"])["Statement"]) {
		st := mapOf(st)
		cond := mapOf(mapOf(st["Condition"])["Bool"])
		if st["Effect"] == "Deny" && st["Action"] == "s3:*" && cond["aws:SecureTransport"] == "false" && len(asList(st["Resource"])) == 2 {
			denied = true
		}
	}
	if !denied {
		t.Errorf("no statement denies requests without TLS on the bucket and its objects: %s", jsonText(pol))
	}
	if c := resource(t, "ChatTopic")["Condition"]; c != "HasChat" {
		t.Errorf("ChatTopic Condition = %v, want HasChat", c)
	}
}
