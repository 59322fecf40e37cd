package secret_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"example.com/tokenvendingmachine/internal/secret"
	"example.com/tokenvendingmachine/internal/secretmanagertest"
)

func ExampleClient_MomentoKey() {
	srv, err := secretmanagertest.NewServer(secretmanagertest.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	srv.AddVersion("projects/demo/secrets/momento", []byte("not-a-real-key\n"))

	ctx := context.Background()
	// In production emulatorHost is os.Getenv("SECRETMANAGER_EMULATOR_HOST"),
	// usually empty.
	c, err := secret.NewClient(ctx, srv.Addr())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	key, err := c.MomentoKey(ctx, "projects/demo/secrets/momento")
	fmt.Println(len(key.APIKey), err) // never print or log the key itself

	_, err = c.MomentoKey(ctx, "projects/demo/secrets/missing")
	switch {
	case errors.Is(err, secret.ErrPayload), errors.Is(err, secret.ErrChecksum):
		fmt.Println("bad payload")
	case status.Code(err) == codes.NotFound:
		fmt.Println("no such secret")
	}
	// Output:
	// 14 <nil>
	// no such secret
}
