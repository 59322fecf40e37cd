// check.mjs holds the Momento emulator to the Node SDK (@gomomento/sdk):
// create a cache, mint disposable tokens with the auth client, subscribe
// with a subscribe-only token, publish with a publish-only token that
// carries a tokenId, read that tokenId back as the items' publisher id, lose
// the connection, and check that the SDK's own resubscription resumes from
// the last sequence number without losing what was published meanwhile.
// Then, with the account's v2 API key and an endpoint, as Momento issues
// keys now: mint a token, check that it is a v1 disposable token (base64 of
// {"api_key", "endpoint"}), and subscribe with it at its own endpoint.
//
// Input (environment): EMULATOR_ADDR (host:port, plaintext gRPC),
// MOMENTO_API_KEY (the emulator's account key, v1 form), MOMENTO_API_KEY_V2
// (the same key in v2 form) and MOMENTO_ENDPOINT (the endpoint to use with
// it). The SDK dials a v2 key's endpoint with TLS on port 443 and nothing
// else; the test reaches the emulator there through a TLS-ending proxy that
// it names in grpc_proxy (no_grpc_proxy keeps the plaintext clients on
// 127.0.0.1 off it) and whose certificate it names in
// GRPC_DEFAULT_SSL_ROOTS_FILE_PATH.
// It prints one line per check and never prints a key or a token. Exit
// status 0 means every check passed. Run by TestNodeSDK in
// internal/conformance.
import net from 'node:net';
import sdk from '@gomomento/sdk';

const {
  AuthClient,
  AuthClientConfigurations,
  CacheClient,
  Configurations,
  CreateCache,
  CredentialProvider,
  DisposableTokenScopes,
  ExpiresIn,
  GenerateDisposableToken,
  MomentoErrorCode,
  TopicClient,
  TopicConfigurations,
  TopicPublish,
  TopicSubscribe,
} = sdk;

const addr = process.env.EMULATOR_ADDR;
const apiKey = process.env.MOMENTO_API_KEY;
const apiKeyV2 = process.env.MOMENTO_API_KEY_V2;
const endpoint = process.env.MOMENTO_ENDPOINT;
if (!addr || !apiKey || !apiKeyV2 || !endpoint) {
  fail('EMULATOR_ADDR, MOMENTO_API_KEY, MOMENTO_API_KEY_V2 and MOMENTO_ENDPOINT must be set');
}

const suffix = Math.random().toString(36).slice(2, 10);
const cacheName = `node-check-${suffix}`;
const topicName = `orders/${suffix}`;
const publisherTokenId = `node-publisher-${suffix}`;
const v2TokenId = `node-v2-${suffix}`;
const timeoutMs = 20000;
let checks = 0;

function fail(msg) {
  console.log(`FAIL: ${msg}`);
  process.exit(1);
}

function pass(msg) {
  checks++;
  console.log(`ok: ${msg}`);
}

// endpoints points every Momento endpoint at hostPort over plaintext.
function endpoints(hostPort) {
  return {
    controlEndpoint: hostPort,
    cacheEndpoint: hostPort,
    tokenEndpoint: hostPort,
    secureConnection: false,
  };
}

function credentials(key, hostPort) {
  return CredentialProvider.fromString({ apiKey: key, endpointOverrides: endpoints(hostPort) });
}

// waitFor polls cond until it holds or timeoutMs passes.
async function waitFor(what, cond) {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) {
      fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise(r => setTimeout(r, 20));
  }
}

// relay is a TCP relay to the emulator whose connections can be cut: while
// cut, it drops every connection it has and every new one.
function startRelay(target) {
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const sockets = new Set();
  const relay = { cut: false, accepted: 0 };
  const server = net.createServer(client => {
    if (relay.cut) {
      client.destroy();
      return;
    }
    relay.accepted++;
    const upstream = net.connect(port, host);
    sockets.add(client);
    sockets.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  relay.cutAll = () => {
    relay.cut = true;
    for (const s of sockets) s.destroy();
    sockets.clear();
  };
  relay.heal = () => {
    relay.cut = false;
  };
  relay.close = () => server.close();
  return new Promise(resolve => {
    server.listen(0, '127.0.0.1', () => {
      relay.addr = `127.0.0.1:${server.address().port}`;
      resolve(relay);
    });
  });
}

async function mint(auth, scope, props) {
  const resp = await auth.generateDisposableToken(scope, ExpiresIn.minutes(10), props);
  if (!(resp instanceof GenerateDisposableToken.Success)) {
    fail(`generateDisposableToken: ${resp.toString()}`);
  }
  return resp.authToken;
}

async function main() {
  const account = credentials(apiKey, addr);

  const cache = await CacheClient.create({
    configuration: Configurations.Laptop.v1(),
    credentialProvider: account,
    defaultTtlSeconds: 60,
  });
  const created = await cache.createCache(cacheName);
  if (!(created instanceof CreateCache.Success)) {
    fail(`createCache: ${created.toString()}`);
  }
  pass('createCache with the account key');

  const auth = new AuthClient({
    configuration: AuthClientConfigurations.Default.latest(),
    credentialProvider: account,
  });
  const subToken = await mint(auth, DisposableTokenScopes.topicSubscribeOnly(cacheName, topicName));
  const pubToken = await mint(auth, DisposableTokenScopes.topicPublishOnly(cacheName, topicName), {
    tokenId: publisherTokenId,
  });
  pass('generateDisposableToken: a subscribe-only token, and a publish-only token with a tokenId');

  const relay = await startRelay(addr);
  const topicConfig = TopicConfigurations.Default.latest();
  const subscriber = new TopicClient({ configuration: topicConfig, credentialProvider: credentials(subToken, relay.addr) });
  const publisher = new TopicClient({ configuration: topicConfig, credentialProvider: credentials(pubToken, addr) });

  const refused = await subscriber.publish(cacheName, topicName, 'not allowed');
  if (!(refused instanceof TopicPublish.Error) || refused.errorCode() !== MomentoErrorCode.PERMISSION_ERROR) {
    fail(`publish with the subscribe-only token: got ${refused.toString()}, want a PERMISSION_ERROR`);
  }
  pass('publish with the subscribe-only token is refused with PERMISSION_ERROR');

  const items = [];
  const errors = [];
  let lost = 0;
  let discontinuities = 0;
  const sub = await subscriber.subscribe(cacheName, topicName, {
    onItem: item => items.push(item),
    onError: err => errors.push(err.toString()),
    onConnectionLost: () => lost++,
    onDiscontinuity: () => discontinuities++,
  });
  if (!(sub instanceof TopicSubscribe.Subscription)) {
    fail(`subscribe with the subscribe-only token: ${sub.toString()}`);
  }
  pass('subscribe with the subscribe-only token');

  async function publish(values) {
    for (const v of values) {
      const resp = await publisher.publish(cacheName, topicName, v);
      if (!(resp instanceof TopicPublish.Success)) {
        fail(`publish ${v}: ${resp.toString()}`);
      }
    }
  }

  const before = ['before-1', 'before-2'];
  await publish(before);
  await waitFor('the items published before the cut', () => items.length >= before.length);
  pass(`received ${before.length} items while connected`);

  relay.cutAll();
  await waitFor('the subscriber to notice the lost connection', () => lost > 0);
  pass('the subscriber noticed the lost connection');
  const during = ['during-1', 'during-2', 'during-3'];
  await publish(during);
  await new Promise(r => setTimeout(r, 300));
  relay.heal();

  const after = ['after-1'];
  const want = [...before, ...during, ...after];
  await waitFor('the resubscription', () => relay.accepted >= 2);
  await publish(after);
  await waitFor(`all ${want.length} items`, () => items.length >= want.length);
  await new Promise(r => setTimeout(r, 200));

  const got = items.map(i => i.valueString());
  if (JSON.stringify(got) !== JSON.stringify(want)) {
    fail(`items: got ${JSON.stringify(got)}, want ${JSON.stringify(want)} (in order, none lost, none twice)`);
  }
  pass('after reconnecting, the SDK resumed: every item published during the gap arrived, in order, once');

  const seqs = items.map(i => i.sequenceNumber());
  for (let i = 1; i < seqs.length; i++) {
    if (seqs[i] !== seqs[i - 1] + 1) {
      fail(`sequence numbers are not consecutive: ${JSON.stringify(seqs)}`);
    }
  }
  pass(`sequence numbers ${seqs[0]}..${seqs[seqs.length - 1]} are consecutive`);
  if (discontinuities !== 0) {
    fail(`got ${discontinuities} discontinuities, want 0`);
  }
  pass('no discontinuity');

  const ids = [...new Set(items.map(i => i.tokenId()))];
  if (ids.length !== 1 || ids[0] !== publisherTokenId) {
    fail(`publisher ids: got ${JSON.stringify(ids)}, want only the publishing token's tokenId`);
  }
  pass("every item's publisher_id is the publishing token's tokenId");
  if (errors.length > 0) {
    fail(`subscription errors: ${JSON.stringify(errors)}`);
  }

  sub.unsubscribe();

  const v2 = await checkV2Key(topicConfig, publish);

  for (const client of [subscriber, publisher, cache, auth, ...v2]) {
    client.close?.();
  }
  relay.close();
  console.log(`node check: ${checks} checks passed`);
  process.exit(0);
}

// checkV2Key mints a subscribe-only token with the v2 key, checks its
// form, and receives with it an item that publish sends. It returns the
// clients it opened.
async function checkV2Key(topicConfig, publish) {
  const auth = new AuthClient({
    configuration: AuthClientConfigurations.Default.latest(),
    credentialProvider: CredentialProvider.fromApiKeyV2({ apiKey: apiKeyV2, endpoint }),
  });
  const token = await mint(auth, DisposableTokenScopes.topicSubscribeOnly(cacheName, topicName), {
    tokenId: v2TokenId,
  });
  pass('generateDisposableToken with the v2 key, at its endpoint over TLS');

  const json = Buffer.from(token, 'base64');
  let claims;
  try {
    claims = JSON.parse(json.toString('utf8'));
  } catch {
    claims = null;
  }
  const keys = claims && typeof claims === 'object' ? Object.keys(claims).sort() : [];
  if (json.toString('base64') !== token || JSON.stringify(keys) !== '["api_key","endpoint"]' ||
      typeof claims.api_key !== 'string' || claims.api_key === '' || claims.endpoint !== endpoint) {
    fail(`the token minted with the v2 key is not base64 of {"api_key", "endpoint": "${endpoint}"} (keys: ${JSON.stringify(keys)})`);
  }
  pass('the token minted with the v2 key is a v1 disposable token: base64 of {"api_key", "endpoint"}');

  // The token as a browser would get it: no endpoint but its own.
  const subscriber = new TopicClient({
    configuration: topicConfig,
    credentialProvider: CredentialProvider.fromDisposableToken(token),
  });
  const items = [];
  const errors = [];
  const sub = await subscriber.subscribe(cacheName, topicName, {
    onItem: item => items.push(item.valueString()),
    onError: err => errors.push(err.toString()),
  });
  if (!(sub instanceof TopicSubscribe.Subscription)) {
    fail(`subscribe with the token minted with the v2 key: ${sub.toString()}`);
  }
  await publish(['v2-1']);
  await waitFor('the item published to the v2 token\'s subscription', () => items.length >= 1);
  if (JSON.stringify(items) !== '["v2-1"]' || errors.length > 0) {
    fail(`subscription with the token minted with the v2 key: items ${JSON.stringify(items)}, errors ${JSON.stringify(errors)}`);
  }
  pass('subscribe with the token minted with the v2 key, at its endpoint over TLS, and receive an item');
  sub.unsubscribe();
  return [subscriber, auth];
}

main().catch(err => fail(`unexpected: ${err && err.stack ? err.stack : err}`));
