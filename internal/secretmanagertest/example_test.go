package secretmanagertest_test

import (
	"context"
	"fmt"
	"log"

	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"

	"example.com/tokenvendingmachine/internal/secretmanagertest"
)

func Example() {
	srv, err := secretmanagertest.NewServer(secretmanagertest.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	srv.AddVersion("projects/demo/secrets/momento", []byte("old-key"))
	srv.AddVersion("projects/demo/secrets/momento", []byte(`{"momento": "new-key"}`))

	ctx := context.Background()
	client, err := secretmanager.NewClient(ctx, srv.ClientOptions()...)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	resp, err := client.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{
		Name: "projects/demo/secrets/momento/versions/latest",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.GetName())
	fmt.Println(string(resp.GetPayload().GetData()))
	fmt.Println(srv.Accesses())
	// Output:
	// projects/demo/secrets/momento/versions/2
	// {"momento": "new-key"}
	// [projects/demo/secrets/momento/versions/latest]
}
