package sdk_test

import (
	"os/exec"
	"regexp"
	"testing"
)

// TestExportedAPIHasNoInternalTypes: the SDK uses writ's internal packages
// but its exported API must not mention them (a user could not name them).
func TestExportedAPIHasNoInternalTypes(t *testing.T) {
	out, err := exec.Command("go", "doc", "-all", ".").CombinedOutput()
	if err != nil {
		t.Skipf("go doc: %v\n%s", err, out)
	}
	if m := regexp.MustCompile(`\b(jwks|token|config|audit|keys)\.[A-Z]\w*`).Find(out); m != nil {
		t.Fatalf("the exported API mentions an internal type: %s", m)
	}
}
