// Package conformance holds the tests that hold the Momento emulator
// (internal/momentotest) to real Momento clients' own expectations. It has no
// code of its own beyond this comment: everything is in its tests.
//
// TestGoSDKSpecs runs the Momento Go SDK's own ginkgo specs (they ship in the
// module github.com/momentohq/client-sdk-go@v1.38.0, in package momento) for
// the surface this project uses, against an emulator on loopback. The test
// copies the SDK module from the module cache into a temporary directory,
// puts testdata/gosdk's go.mod and go.sum in it, compiles the specs with
// `go test -c -mod=readonly` and runs them with a focus on the specs listed
// in surfaceSpecs. Nothing in the SDK's sources is changed: the suite's setup
// reads its key from MOMENTO_API_KEY, and the connection is pointed at the
// emulator only through the environment (see TestGoSDKSpecs for how and why).
//
// testdata/gosdk/go.mod keeps the SDK's module path and its own ginkgo and
// gomega, with the modules it shares with this project at this project's
// versions, so the specs run on the gRPC our function ships with; its go.sum
// pins every module that build needs. TestPinnedSDKModuleIsOurs fails when
// they fall behind go.mod (a bumped gRPC, say); rewrite both with the one
// command
//
//	internal/conformance/testdata/gosdk/regen.sh
//
// TestNodeSDK runs node/check.mjs with the npm package @gomomento/sdk
// against an emulator: mint a disposable token, subscribe with it, publish
// with a token that carries a tokenId, read publisher_id, lose the
// connection and resume without losing the items published meanwhile; then
// mint with the account's v2 key (which the SDK takes only with an endpoint
// it dials over TLS, so through momentotest's TLS proxy), check that the
// token is a v1 disposable token and subscribe with it. It skips, saying
// so, when node or npm is missing, and fails instead under REQUIRE_NODE=1.
//
// Every module the Go test fetches is pinned by a go.sum in this repository
// and every npm package by package-lock.json: the first run needs only the
// Go module proxy and the npm registry. Both tests are skipped by
// go test -short. Run them alone with
//
//	go test -count=1 -v -run 'TestGoSDKSpecs|TestNodeSDK' ./internal/conformance/
package conformance
