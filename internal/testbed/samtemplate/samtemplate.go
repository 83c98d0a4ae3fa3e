// Package samtemplate reads the deployment template (template.yaml) so that local tests and
// the demo create exactly the DynamoDB table that CloudFormation would. Its tests also check
// the template with cfn-lint and the SAM translator.
package samtemplate

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// FindTemplate returns the path of template.yaml in the module root: the nearest directory,
// starting at the working directory and walking up, that holds go.mod. It fails when there
// is no go.mod above the working directory or no template.yaml beside it.
func FindTemplate() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find template.yaml: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			path := filepath.Join(dir, "template.yaml")
			if _, err := os.Stat(path); err != nil {
				return "", fmt.Errorf("find template.yaml: module root %s has none: %w", dir, err)
			}
			return path, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("find template.yaml: %w", err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find template.yaml: no go.mod in the working directory or above it")
		}
		dir = parent
	}
}
