// Package buildpack holds, in its tests, the checks that Google Cloud
// Functions' Go buildpack (and Cloud Run's --base-image goNNN source
// deploys, which use the same) makes of the function's module: one package
// at the root, test files included; a module path with a dot; a go
// directive no newer than the runtime the README deploys with. It then
// builds the module as the buildpack does and fetches a token from it, with
// the entry point the README's deploy commands name.
//
// It has no code of its own: run it with go test ./internal/buildpack/.
package buildpack
