// The page of internal/momentotest's TestWebSDKInBrowser: @gomomento/sdk-web,
// bundled by esbuild, pointed at the emulator's gRPC-web port. The test
// calls window.webCheck's functions and reads what they recorded.
import {
  CacheClient,
  CacheGet,
  CacheSet,
  Configurations,
  CredentialProvider,
  TopicClient,
  TopicConfigurations,
  TopicSubscribe,
} from '@gomomento/sdk-web';

function credentials(url, token) {
  // The web SDK takes the scheme from the endpoint: http:// for the emulator.
  return CredentialProvider.fromDisposableToken({
    authToken: token,
    endpointOverrides: {cacheEndpoint: url, controlEndpoint: url, tokenEndpoint: url},
  });
}

window.webCheck = {
  // Items received, and errors reported, by the subscription.
  items: [],
  errors: [],

  // subscribe opens a subscription and resolves to "subscribed" or the
  // error's code and message.
  async subscribe({url, token, cache, topic}) {
    const topics = new TopicClient({
      configuration: TopicConfigurations.Browser.latest(),
      credentialProvider: credentials(url, token),
    });
    const resp = await topics.subscribe(cache, topic, {
      onItem: item => this.items.push(item.valueString()),
      onError: err => this.errors.push(err.errorCode()),
    });
    if (resp instanceof TopicSubscribe.Subscription) {
      return 'subscribed';
    }
    return `${resp.errorCode()}: ${resp.message()}`;
  },

  // setGet sets key to value, then gets key, and resolves to what Get found
  // or to the first error.
  async setGet({url, token, cache, key, value}) {
    const cacheClient = new CacheClient({
      configuration: Configurations.Browser.latest(),
      credentialProvider: credentials(url, token),
      defaultTtlSeconds: 60,
    });
    const set = await cacheClient.set(cache, key, value);
    if (!(set instanceof CacheSet.Success)) {
      return `set: ${set.toString()}`;
    }
    const got = await cacheClient.get(cache, key);
    if (!(got instanceof CacheGet.Hit)) {
      return `get: ${got.toString()}`;
    }
    return got.valueString();
  },
};
