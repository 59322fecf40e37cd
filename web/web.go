// Package web holds the browser helper, tvm.js: an ES module that keeps a
// page subscribed to Momento topics with the function's tokens, across
// refreshes, sleeps and network losses. Pages import the file itself; this
// package embeds it so that the local runner's demo page can serve it. See
// README.md here, and tvm.d.ts for its interface.
package web

import _ "embed"

// Module is tvm.js, the helper's ES module.
//
//go:embed tvm.js
var Module string
