package conformance

import (
	"regexp"
	"strings"
)

// specGroup is a set of the Go SDK's specs under one container: a spec's
// full text is the container's text, a space, and the leaf's text, as ginkgo
// joins them (the suite's description is not part of it).
type specGroup struct {
	name      string // our name for the group, for the report
	container string
	leaves    []string
}

// surfaceSpecs are the Go SDK v1.38.0 specs for the surface this project
// uses: scalar Get, Set, Delete and Increment with their argument and
// missing-cache errors (scalar_test.go), topics with heartbeats
// (topic_client_test.go), disposable tokens of every scope type
// (auth_client_test.go), and creating, listing and deleting caches
// (control_test.go), which the suite's own setup relies on: BeforeSuite
// creates two caches and AfterSuite deletes them, and both are checked
// besides these specs.
//
// Left out on purpose, as surface we do not use: the conditional sets
// (SetIfAbsent and friends), KeysExist, UpdateTtl and friends, ItemGetType,
// ItemGetTtl, the collection types, API keys (GenerateApiKey, RefreshApiKey),
// leaderboards, storage, and every spec labelled momento-local or retry
// (they drive the momento-local server's fault-injection metadata).
var surfaceSpecs = []specGroup{
	{
		name:      "scalar Get/Set/Delete",
		container: "cache-client scalar-methods Gets, Sets, and Deletes",
		leaves: []string{
			"when the key and value are strings",
			"when the key and value are bytes",
			"when the value is empty",
			"when the value is blank",
			"with default cache name when the key and value are strings",
			"with default cache name when the key and value are bytes",
			"with default cache name when the value is empty",
			"with default cache name when the value is blank",
			"using a consistent read concern client",
			"using a balanced read concern client",
		},
	},
	{
		name:      "scalar missing cache",
		container: "cache-client scalar-methods errors when the cache is missing",
		leaves:    []string{"with default client", "with client with default cache"},
	},
	{
		name:      "scalar nil key",
		container: "cache-client scalar-methods errors when the key is nil",
		leaves:    []string{"with default client", "with client with default cache"},
	},
	{
		name:      "scalar miss",
		container: "cache-client scalar-methods returns a miss when the key doesn't exist",
		leaves:    []string{"with default client", "with client with default cache"},
	},
	{
		name:      "scalar invalid names",
		container: "cache-client scalar-methods invalid cache names and keys",
		leaves: []string{
			"With default client and an empty cache name",
			"With default client and  an bank cache name",
			"With default client and  an empty key",
			"With client with default cache and an bank cache name",
			"With client with default cache and an empty key",
		},
	},
	{
		name:      "scalar Set TTL",
		container: "cache-client scalar-methods Set",
		leaves: []string{
			"Uses the default TTL",
			"Overrides the default TTL",
			"Overrides the default TTL without unit and invalid",
			"returns an error for a nil value",
		},
	},
	{
		name:      "scalar Increment",
		container: "cache-client scalar-methods Increment",
		leaves: []string{
			"Increments from 0 to expected amount with string field",
			"Increments from 0 to expected amount with bytes field",
			"Increments with setting and resetting field",
		},
	},
	{
		name:      "topic names",
		container: "topic-client Validates the names",
		leaves: []string{
			"Empty cache name",
			"Blank cache name",
			"Empty collection name",
			"Blank collection name",
			"Non-existent cache",
		},
	},
	{
		name:      "topics",
		container: "topic-client",
		leaves: []string{
			"Publishes and receives",
			"should error on deadline exceeded",
			"Publishes and receives detailed subscription items",
			"Cancels the context immediately after subscribing and asserts as such",
			"returns an error when trying to publish a nil topic value",
			"Subscribe Does not error on a non-existent topic",
			"Can close individual topics subscriptions without closing the grpc channel",
		},
	},
	disposable("CacheKeyReadOnly",
		"AllCaches",
		"for a specific cache"),
	disposable("CacheKeyWriteOnly",
		"for a specific cache",
		"for all caches"),
	disposable("CacheKeyReadWrite",
		"for all caches",
		"for a specific cache"),
	disposable("CacheKeyPrefixReadWrite",
		"for a specific cache",
		"for all caches"),
	disposable("CacheKeyPrefixReadOnly",
		"for a specific cache",
		"for all caches"),
	disposable("CacheKeyPrefixWriteOnly",
		"for a specific cache",
		"for all caches"),
	disposable("TopicNamePrefixPublishSubscribe",
		"for a specific cache",
		"for all caches"),
	disposable("TopicNamePrefixPublishOnly",
		"for a specific cache",
		"for all caches"),
	disposable("TopicNamePrefixSubscribeOnly",
		"for a specific cache",
		"for all caches"),
	disposable("TopicPublishOnly",
		"for a specific cache",
		"for all caches and all topics"),
	disposable("TopicSubscribeOnly",
		"for a specific cache",
		"for all caches and all topics"),
	disposable("TopicPublishSubscribe",
		"for a specific cache",
		"for all caches and all topics"),
	{
		// The SDK names its second CacheReadWrite spec after
		// TopicPublishSubscribe; it tests an all-caches CacheReadWrite token.
		name:      "token CacheReadWrite",
		container: "auth auth-client Generate disposable tokens CacheReadWrite tokens",
		leaves: []string{
			"Generates disposable token CacheReadWrite for a specific cache, and validates its permissions",
			"Generates disposable token TopicPublishSubscribe for all caches, and validates its permissions",
		},
	},
	disposable("CacheReadOnly",
		"for a specific cache",
		"for all caches"),
	disposable("CacheWriteOnly",
		"for a specific cache",
		"for all caches"),
	{
		name:      "control plane",
		container: "control-ops",
		leaves: []string{
			"cache-client happy-path creates, lists, and deletes caches",
			"cache-client happy-path creates and deletes using a default cache",
			"cache-client default-cache-name overrides default cache name",
			"cache-client validate-cache-name CreateCache and DeleteCache errors on bad cache names",
			"cache-client delete-cache succeeds even if the cache does not exist",
		},
	},
}

// disposable is the group of specs of one disposable token scope type, one
// spec for each cache selection named by where.
func disposable(scope string, where ...string) specGroup {
	g := specGroup{
		name:      "token " + scope,
		container: "auth auth-client Generate disposable tokens " + scope + " tokens",
	}
	for _, w := range where {
		g.leaves = append(g.leaves, "Generates disposable token "+scope+" "+w+", and validates its permissions")
	}
	return g
}

// surfaceSpecNames returns the full text of every spec in surfaceSpecs, and
// the group each belongs to.
func surfaceSpecNames() (names []string, group map[string]string) {
	group = make(map[string]string)
	for _, g := range surfaceSpecs {
		for _, l := range g.leaves {
			n := g.container + " " + l
			names = append(names, n)
			group[n] = g.name
		}
	}
	return names, group
}

// focusRegexp returns the ginkgo focus that selects exactly names. Ginkgo
// matches it against the suite's description, a space, and the spec's text.
func focusRegexp(suite string, names []string) string {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = regexp.QuoteMeta(n)
	}
	return "^" + regexp.QuoteMeta(suite) + " (" + strings.Join(quoted, "|") + ")$"
}
