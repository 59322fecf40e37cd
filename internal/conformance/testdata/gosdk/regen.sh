#!/usr/bin/env bash
# regen.sh writes go.mod and go.sum beside it: the module file that
# TestGoSDKSpecs puts in its copy of the Momento Go SDK before building the
# SDK's specs. They keep the SDK's module path and its own versions of
# ginkgo and gomega, with every module that the project's go.mod also
# requires raised (or lowered) to the project's version, so the specs run
# against the gRPC and protobuf our function ships with.
#
# Run it after a change to the SDK or to a shared module in go.mod:
#
#	internal/conformance/testdata/gosdk/regen.sh
#
# It is the only step that may look a module up in the checksum database;
# the test builds with -mod=readonly against the go.sum written here.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../../.." && pwd)"
sdk=github.com/momentohq/client-sdk-go

# requires prints "path version" for each requirement of the go.mod in $1.
requires() {
	go mod edit -fmt -print "$1" | awk '
		/^require \($/ { block = 1; next }
		block && /^\)/ { block = 0; next }
		block && NF >= 2 { print $1, $2 }
		!block && $1 == "require" && NF >= 3 { print $2, $3 }'
}

cd "$root"
sdkversion="$(go list -m -f '{{.Version}}' "$sdk")"
src="$(go mod download -json "$sdk" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
if [ -z "$src" ]; then
	echo "regen.sh: go mod download $sdk printed no directory" >&2
	exit 1
fi
work="$(mktemp -d)"
trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT
cp -R "$src/." "$work"
chmod -R u+w "$work"

ours="$(requires "$root/go.mod")"
main="$(go list -m)"
cd "$work"
# Aligning one module can bring in another that both share, so repeat
# until nothing changes.
for _ in 1 2 3 4 5; do
	edits=()
	while read -r path version; do
		want="$(awk -v p="$path" '$1 == p { print $2 }' <<<"$ours")"
		if [ -n "$want" ] && [ "$want" != "$version" ]; then
			edits+=("-require=$path@$want")
		fi
	done < <(requires go.mod)
	if [ "${#edits[@]}" -eq 0 ]; then
		break
	fi
	go mod edit "${edits[@]}"
	go mod tidy
done
if [ "${#edits[@]}" -ne 0 ]; then
	echo "regen.sh: the shared modules did not settle at the project's versions: ${edits[*]}" >&2
	exit 1
fi
{
	echo "// Written by regen.sh for $sdk $sdkversion, with the modules"
	echo "// it shares with $main at that module's versions. Do not edit."
	cat go.mod
} >"$here/go.mod"
cp go.sum "$here/"
echo "wrote $here/go.mod and go.sum"
