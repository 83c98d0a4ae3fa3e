// Package samtemplate reads the deployment template (template.yaml) so that local tests and
// the demo create exactly the DynamoDB table that CloudFormation would. Its tests also check
// the template with cfn-lint and the SAM translator.
package samtemplate

import (
	"fmt"
	"ipguard/internal/testbed/localaws"
	"os"
	"path/filepath"
)

// FindTemplate returns the path of template.yaml in the module root
// (localaws.ModuleRoot: the nearest directory, starting at the working
// directory and walking up, that holds go.mod). It fails when there is no
// go.mod above the working directory or no template.yaml beside it.
func FindTemplate() (string, error) {
	root, err := localaws.ModuleRoot()
	if err != nil {
		return "", fmt.Errorf("find template.yaml: %w", err)
	}
	path := filepath.Join(root, "template.yaml")
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("find template.yaml: module root %s has none: %w", root, err)
	}
	return path, nil
}
