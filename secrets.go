package tokenvendingmachine

// The Momento key, read from the secret SECRET_ID names or from
// MOMENTO_API_KEY, and the errors of reading a secret.

import (
	"cmp"
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"example.com/tokenvendingmachine/internal/failure"
	"example.com/tokenvendingmachine/internal/secret"
	"example.com/tokenvendingmachine/internal/vending"
)

// readKey returns the Momento key and its endpoint: from the secret
// SECRET_ID names, read through secrets, or else from MOMENTO_API_KEY.
func (h *handler) readKey(ctx context.Context, secrets *secret.Client) (vending.Credentials, error) {
	if h.cfg.SecretID == "" {
		return vending.Credentials{APIKey: h.cfg.APIKey, Endpoint: h.cfg.MomentoEndpoint}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.UpstreamTimeout)
	defer cancel()
	k, err := secrets.MomentoKey(ctx, h.cfg.SecretID)
	if err != nil {
		return vending.Credentials{}, err
	}
	return h.endpointFor(k), nil
}

// endpointFor returns the credentials for a key read from Secret Manager.
// An endpoint stored with the key wins over MOMENTO_ENDPOINT: the two were
// issued together and rotate together, while the variable changes only
// with a redeploy. A disagreement is logged, since one of them is stale.
func (h *handler) endpointFor(k secret.Key) vending.Credentials {
	if k.Endpoint != "" && h.cfg.MomentoEndpoint != "" && k.Endpoint != h.cfg.MomentoEndpoint {
		h.log.Warn("the secret names its own Momento endpoint; MOMENTO_ENDPOINT is ignored",
			"endpoint", k.Endpoint, "momento_endpoint", h.cfg.MomentoEndpoint)
	}
	return vending.Credentials{APIKey: k.APIKey, Endpoint: cmp.Or(k.Endpoint, h.cfg.MomentoEndpoint)}
}

// secretError gives a failure to read the secret that variable names its
// kind.
func secretError(variable string, err error) error {
	err = fmt.Errorf("read the secret %s names: %w", variable, err)
	if errors.Is(err, secret.ErrPayload) {
		return failure.Wrap(failure.Misconfigured, err)
	}
	switch status.Code(err) {
	case codes.NotFound, codes.PermissionDenied, codes.Unauthenticated, codes.InvalidArgument, codes.FailedPrecondition:
		// The secret is missing or the service account may not read it:
		// ours to fix, not worth retrying soon.
		return failure.Wrap(failure.Misconfigured, err)
	}
	return failure.Wrap(failure.Unavailable, err)
}
