// Types of tvm.js, the browser helper of the token vending machine.

/**
 * The parts of `@gomomento/sdk-web` (1.118 or later) the helper uses: pass
 * the module itself, `import * as momento from '@gomomento/sdk-web'`.
 */
export interface WebSDK {
  CredentialProvider: {fromDisposableToken(props: object): unknown};
  TopicClient: new (props: {configuration: unknown; credentialProvider: unknown}) => {
    subscribe(cacheName: string, topicName: string, options: object): Promise<unknown>;
  };
  TopicConfigurations: {Browser: {latest(): unknown}};
}

/**
 * A topic item, as the web SDK hands it over: `valueString()`,
 * `valueUint8Array()`, `sequenceNumber()`, `tokenId()` (the publisher's).
 */
export interface TopicItem {
  value(): string | Uint8Array;
  valueString(): string;
  valueUint8Array(): Uint8Array;
  sequenceNumber(): number;
  tokenId(): string | undefined;
}

/** What {@link subscribeTopics} needs to know. */
export interface Options {
  /** The web SDK module. */
  sdk: WebSDK;
  /** The token vending machine's URL. */
  url: string;
  /** The cache the topics are in: the function's CACHE_NAME. */
  cache: string;
  /** The topics to stay subscribed to; each must be in the caller's scope. */
  topics: string[];
  /**
   * Returns the caller's ticket or ID token, sent as `Authorization:
   * Bearer`; null or omitted for an anonymous visitor. Called before every
   * token fetch, so it may hand out a fresh one each time; `rejected` is
   * true when the function has just refused the last one (401), the one
   * time it is asked again before the helper stops.
   */
  credential?: (ask: {rejected: boolean}) => string | null | Promise<string | null>;
  /**
   * Momento's endpoint for the web SDK, such as the local emulator's
   * gRPC-web URL `http://127.0.0.1:8082`; omitted, the token's own.
   */
  endpoint?: string;
  /**
   * Tabs of one origin with the same `share` name (and `url`) fetch tokens
   * once for all: one tab fetches and hands each token to the others. Use
   * a name per caller, such as the signed-in user's id. Default:
   * "anonymous" without `credential`, otherwise false (no sharing).
   */
  share?: string | false;
  /** Receives every item once, in order of its topic's sequence numbers. */
  onItem?: (item: TopicItem, topic: string) => void;
  /** Receives each gap in a topic: items the page has not had and will not get. */
  onDiscontinuity?: (gap: Discontinuity) => void;
  /** Receives the state whenever it changes. */
  onState?: (state: State) => void;
  /** Receives each new token, for a page that shows what it allows; most need not. */
  onToken?: (token: string) => void;
}

/**
 * Items of a topic the page missed: those after `lastSequenceNumber` up
 * to and including `newSequenceNumber`.
 *
 * - `server`: Momento could not send them (the subscriber fell behind, or
 *   they aged out before a resumed subscription asked).
 * - `gap`: the sequence numbers jumped: a subscription ended before handing
 *   over what it had in flight.
 * - `resubscribed`: the subscription dropped and was made anew; what was
 *   published while it was down is lost (the web SDK cannot resume at a
 *   sequence number), and `newSequenceNumber` is unknown. Reported as soon
 *   as the new subscription is live, before any item it brings, so that the
 *   page can reload its state.
 * - `reset`: the numbers started again (the topic was made anew); the page
 *   may have missed anything.
 */
export interface Discontinuity {
  /** The topic. */
  topic: string;
  /** Why; see {@link Discontinuity}. */
  reason: 'server' | 'gap' | 'resubscribed' | 'reset';
  /** The last sequence number the page received, if any. */
  lastSequenceNumber: number | undefined;
  /** The last sequence number missed, if known. */
  newSequenceNumber: number | undefined;
}

/**
 * - `connecting`: getting a first token, or subscribing.
 * - `live`: every allowed topic subscribed with a valid token.
 * - `refreshing`: fetching the next token, or handing the subscriptions over
 *   to it; items keep coming.
 * - `retrying`: the last token fetch failed; the next is at `retryAt`.
 * - `stopped`: for good, see `reason`.
 */
export type Status = 'connecting' | 'live' | 'refreshing' | 'retrying' | 'stopped';

/** One topic's subscription. `refused`: outside the caller's scope, not retried until the next token. */
export interface TopicState {
  status: 'subscribing' | 'live' | 'retrying' | 'refused';
  /** The last error's message, while retrying or refused. */
  message?: string;
}

/** What the page can show. Times are `Date.now()` values, for display. */
export interface State {
  /** See {@link Status}. */
  status: Status;
  /**
   * Why it is retrying or stopped: `http-429`, `http-503`, `http-500`,
   * `network`, `offline`, `credential` (the callback threw), `bad-token`;
   * or, stopped, `unauthorized` (401 twice), `forbidden` (403), `refused`
   * (400, 404, 405, or no topic allowed), `stopped` (by the page).
   */
  reason?: string;
  /** The function's or the error's message. */
  message?: string;
  /** When the next token fetch is, while retrying. */
  retryAt?: number;
  /** When the current token expires, at the latest. */
  expiresAt?: number;
  /** When the next token is fetched. */
  refreshAt?: number;
  /** How many times a token was replaced by the next. */
  refreshes: number;
  /** How many discontinuities were reported. */
  discontinuities: number;
  /** `fetching` for all tabs that share, `receiving` from another tab, or `off`. */
  sharing: 'fetching' | 'receiving' | 'off';
  /** Each topic's state. */
  topics: Record<string, TopicState>;
}

/** A running {@link subscribeTopics}. */
export interface TopicsSubscription {
  /** The state now. */
  readonly state: State;
  /** Unsubscribes from every topic and stops fetching tokens. */
  stop(): void;
}

/**
 * Subscribes to `options.topics` with tokens from the function at
 * `options.url`, and keeps them subscribed: it refreshes each token when
 * the function's `refresh_in` says, subscribes with the new token before it
 * drops the old subscription, and hands the page each item once, in order.
 * It backs off on errors (obeying `Retry-After`), stops on 401 (after asking
 * `credential` once more) and 403, and resumes after a sleep or when the
 * network is back.
 */
export function subscribeTopics(options: Options): TopicsSubscription;
