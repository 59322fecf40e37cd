package secretname

import (
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"projects/p/secrets/s", true},
		{"projects/my-project-123/secrets/momento-api_key/versions/latest", true},
		{"projects/123456789012/secrets/S/versions/7", true},
		{"projects/example.com:proj/secrets/s/versions/1", true},
		{"projects/p/secrets/s/versions/prod-alias", true},
		{"projects/p/secrets/" + strings.Repeat("s", 255), true},
		{"", false},
		{"projects/p", false},
		{"projects/p/secrets", false},
		{"projects/p/secrets/", false},
		{"projects//secrets/s", false},
		{"projects/p/secrets/s/versions", false},
		{"projects/p/secrets/s/versions/", false},
		{"projects/p/secrets/s/versions/1/extra", false},
		{"projects/p/secrets/s/", false},
		{"/projects/p/secrets/s", false},
		{"projects/p/secrets/s.t", false},
		{"projects/p/secrets/" + strings.Repeat("s", 256), false},
		{"projects/p/locations/l/secrets/s/versions/1", false},
		{"projects/p/secrets/s\n", false},
		{" projects/p/secrets/s", false},
		{"projects/p/secrets/s/versions/1 ", false},
		{"momento-api-key", false},
		{"secretmanager.googleapis.com/projects/p/secrets/s", false},
	}
	for _, tt := range tests {
		err := Validate(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("Validate(%q) = %v, want ok = %v", tt.name, err, tt.ok)
		}
	}
}

func TestValidateDoesNotQuoteName(t *testing.T) {
	const key = "SECRETkey0123456789"
	err := Validate(key)
	if err == nil || strings.Contains(err.Error(), key) {
		t.Errorf("Validate(key) = %v, want an error that does not contain the input", err)
	}
}
