package momentotest

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

type topicKey struct{ cache, topic string }

// topic is the state of one topic. It is guarded by Server.mu, except gone,
// which is closed (once, under Server.mu) when its cache is deleted.
type topic struct {
	page    uint64      // sequence page: numbers restart when a topic is made anew
	seq     uint64      // sequence number of the newest item
	history []published // the newest items, oldest first, for resuming
	subs    map[*subscriber]struct{}
	gone    chan struct{}
}

// published is an item as published: its value is never modified after.
type published struct {
	seq       uint64
	value     proto.Message // a cache_client.pubsub._TopicValue
	publisher string
}

// subscriber is one open subscription's queue.
type subscriber struct {
	ch chan published
	// end receives the status that EndSubscriptions ends the
	// subscription with (nil: a clean end). It has room for one.
	end chan error
	// lost is the sequence number of the newest item dropped for this
	// subscriber. It is guarded by Server.mu.
	lost uint64
}

// subscriberBuffer is how many items a slow subscriber may fall behind
// before the fake drops items for it; it then sends a discontinuity.
const subscriberBuffer = 64

func (s *Server) publish(ctx context.Context, req protoreflect.Message) (proto.Message, error) {
	if err := s.begin(ctx, MethodPublish); err != nil {
		return nil, err
	}
	key := topicKey{getString(req, "cache_name"), getString(req, "topic")}
	if key.cache == "" || key.topic == "" {
		return nil, status.Error(codes.InvalidArgument, "momentotest: cache_name and topic are required")
	}
	value := getMessage(req, "value")
	if value == nil || whichOneof(value, "kind") == "" {
		return nil, status.Error(codes.InvalidArgument, "momentotest: value is required")
	}
	if n := topicValueSize(value); n > maxTopicValue {
		return nil, limitExceeded(ctx, "request_size_limit_exceeded", "momentotest: message of %d bytes exceeds the limit of %d", n, maxTopicValue)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.dataCallerLocked(ctx, "topic", "publish to", key.cache, key.topic, "TopicReadWrite", "TopicWriteOnly")
	if err != nil {
		return nil, err
	}
	var publisher string
	if c.mint != nil {
		publisher = c.mint.TokenID
	}
	s.publishLocked(key, proto.Clone(value.Interface()), publisher)
	return newMessage("common._Empty").Interface(), nil
}

// Publish publishes text on topic in cache as the account would, without a
// client, and returns the item's sequence number: for tests, and for a local
// backend that plays the app's. The cache must exist (NotFound otherwise),
// and text is held to Momento's 4 KiB limit, as over the wire.
func (s *Server) Publish(cache, topic, text string) (uint64, error) {
	if cache == "" || topic == "" {
		return 0, status.Error(codes.InvalidArgument, "momentotest: cache and topic are required")
	}
	if len(text) > maxTopicValue {
		return 0, status.Errorf(codes.ResourceExhausted, "momentotest: message of %d bytes exceeds the limit of %d", len(text), maxTopicValue)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.requireCacheLocked(cache); err != nil {
		return 0, err
	}
	v := newMessage("cache_client.pubsub._TopicValue")
	set(v, "text", protoreflect.ValueOfString(text))
	return s.publishLocked(topicKey{cache, topic}, v.Interface(), ""), nil
}

// publishLocked numbers value, keeps it for resuming subscribers, hands it
// to the open subscriptions of key, and returns its sequence number. value
// must not be modified after. s.mu must be held.
func (s *Server) publishLocked(key topicKey, value proto.Message, publisher string) uint64 {
	t := s.topicLocked(key)
	t.seq++
	item := published{seq: t.seq, value: value, publisher: publisher}
	if s.history > 0 {
		if len(t.history) == s.history {
			t.history = append(t.history[:0], t.history[1:]...)
		}
		t.history = append(t.history, item)
	}
	for sub := range t.subs {
		select {
		case sub.ch <- item:
		default: // too far behind: drop; the subscriber reports the gap
			sub.lost = item.seq
		}
	}
	return t.seq
}

// EndSubscriptions ends every open subscription: with err's status, or
// cleanly (status OK, as a server draining its connections ends them) if
// err is nil. It returns how many it ended. A client that subscribes again,
// resuming at the next sequence number, is sent what it missed from the
// topic's history (Options.TopicHistory); one that subscribes afresh is not.
func (s *Server) EndSubscriptions(err error) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, t := range s.topics {
		for sub := range t.subs {
			select {
			case sub.end <- err:
				n++
			default: // already being ended
			}
		}
	}
	return n
}

// OnSubscription calls f, with no lock held, as each subscription opens and
// as it ends. It opens once it is registered, before its first heartbeat is
// sent: an item f publishes then follows that heartbeat at once, as an item
// published the moment a subscription opens does. It ends once it is
// deregistered, before its client is told why (unless the client ended
// it): an item f publishes then reaches no subscription the client has
// yet. A subscription that opened before f was set ends with f too. nil
// removes f.
func (s *Server) OnSubscription(f func(cache, topic string, open bool)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onSubscription = f
}

// topicValueSize is the size of a _TopicValue's text or bytes.
func topicValueSize(v protoreflect.Message) int {
	if whichOneof(v, "kind") == "text" {
		return len(getString(v, "text"))
	}
	return len(getBytes(v, "binary"))
}

// topicLocked returns the state of key, creating it. s.mu must be held.
func (s *Server) topicLocked(key topicKey) *topic {
	t := s.topics[key]
	if t == nil {
		s.pages++
		t = &topic{page: s.pages, subs: make(map[*subscriber]struct{}), gone: make(chan struct{})}
		s.topics[key] = t
	}
	return t
}

// gap is a discontinuity to report.
type gap struct{ last, next, page uint64 }

func (s *Server) subscribe(_ any, stream grpc.ServerStream) error {
	ctx := stream.Context()
	req := newMessage("cache_client.pubsub._SubscriptionRequest")
	if err := stream.RecvMsg(req.Interface()); err != nil {
		return err
	}
	if err := s.begin(ctx, MethodSubscribe); err != nil {
		return err
	}
	key := topicKey{getString(req, "cache_name"), getString(req, "topic")}
	if key.cache == "" || key.topic == "" {
		return status.Error(codes.InvalidArgument, "momentotest: cache_name and topic are required")
	}
	resumeAt := getUint(req, "resume_at_topic_sequence_number")
	page := getUint(req, "sequence_page")

	sub := &subscriber{ch: make(chan published, subscriberBuffer), end: make(chan error, 1)}
	s.mu.Lock()
	c, err := s.dataCallerLocked(ctx, "topic", "subscribe to", key.cache, key.topic, "TopicReadWrite", "TopicReadOnly")
	if err != nil {
		s.mu.Unlock()
		return err
	}
	var validUntil time.Time // zero for an account key, which does not expire
	if c.mint != nil {
		validUntil = c.mint.ValidUntil
	}
	t := s.topicLocked(key)
	replay, missed := t.resumeLocked(resumeAt, page)
	last := t.seq // the newest item the stream has accounted for
	t.subs[sub] = struct{}{}
	opened := s.onSubscription
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(t.subs, sub)
		ended := s.onSubscription
		s.mu.Unlock()
		if ended != nil {
			ended(key.cache, key.topic, false)
		}
	}()
	if opened != nil {
		opened(key.cache, key.topic, true)
	}

	// A new subscription always starts with a heartbeat; the SDK waits for it.
	if err := sendHeartbeat(stream); err != nil {
		return err
	}
	if missed != nil {
		if err := sendGap(stream, *missed); err != nil {
			return err
		}
	}
	for _, item := range replay {
		if err := sendItem(stream, item, t.page); err != nil {
			return err
		}
	}
	// A subscription made with a minted token ends when the token expires,
	// as a call made with it then would.
	var expired <-chan struct{} // never, for an account key
	if !validUntil.IsZero() {
		var stop func()
		expired, stop = s.waitUntil(validUntil)
		defer stop()
	}
	tick := time.NewTicker(s.heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-expired:
			return status.Error(codes.Unauthenticated, "momentotest: token has expired")
		case <-t.gone:
			return status.Errorf(codes.NotFound, "momentotest: cache %q not found", key.cache)
		case err := <-sub.end:
			return err
		case <-tick.C:
			if err := sendHeartbeat(stream); err != nil {
				return err
			}
		case item := <-sub.ch:
			if item.seq != last+1 {
				if err := sendGap(stream, gap{last: last, next: item.seq - 1, page: t.page}); err != nil {
					return err
				}
			}
			if err := sendItem(stream, item, t.page); err != nil {
				return err
			}
			last = item.seq
			// Once caught up, report what was dropped since, rather than
			// wait for the next item to reveal the gap.
			s.mu.Lock()
			lost, caughtUp := sub.lost, len(sub.ch) == 0
			s.mu.Unlock()
			if caughtUp && lost > last {
				if err := sendGap(stream, gap{last: last, next: lost, page: t.page}); err != nil {
					return err
				}
				last = lost
			}
		}
	}
}

// resumeLocked returns what a subscription resuming at sequence number
// resumeAt (0: not resuming) of sequence page page must be sent before the
// live items: the kept items from resumeAt on, and a discontinuity if some
// it asked for are gone or the topic was made anew. Server.mu must be held.
func (t *topic) resumeLocked(resumeAt, page uint64) ([]published, *gap) {
	if resumeAt == 0 {
		return nil, nil
	}
	if page != 0 && page != t.page {
		return nil, &gap{last: resumeAt - 1, next: t.seq, page: t.page}
	}
	if resumeAt > t.seq {
		return nil, nil
	}
	var replay []published
	for _, item := range t.history {
		if item.seq >= resumeAt {
			replay = append(replay, item)
		}
	}
	first := t.seq + 1
	if len(replay) > 0 {
		first = replay[0].seq
	}
	if first > resumeAt {
		return replay, &gap{last: resumeAt - 1, next: first - 1, page: t.page}
	}
	return replay, nil
}

func sendHeartbeat(stream grpc.ServerStream) error {
	msg := newMessage("cache_client.pubsub._SubscriptionItem")
	set(msg, "heartbeat", protoreflect.ValueOfMessage(newMessage("cache_client.pubsub._Heartbeat")))
	return stream.SendMsg(msg.Interface())
}

func sendGap(stream grpc.ServerStream, g gap) error {
	d := newMessage("cache_client.pubsub._Discontinuity")
	set(d, "last_topic_sequence", protoreflect.ValueOfUint64(g.last))
	set(d, "new_topic_sequence", protoreflect.ValueOfUint64(g.next))
	set(d, "new_sequence_page", protoreflect.ValueOfUint64(g.page))
	msg := newMessage("cache_client.pubsub._SubscriptionItem")
	set(msg, "discontinuity", protoreflect.ValueOfMessage(d))
	return stream.SendMsg(msg.Interface())
}

func sendItem(stream grpc.ServerStream, item published, page uint64) error {
	ti := newMessage("cache_client.pubsub._TopicItem")
	set(ti, "topic_sequence_number", protoreflect.ValueOfUint64(item.seq))
	set(ti, "sequence_page", protoreflect.ValueOfUint64(page))
	set(ti, "publisher_id", protoreflect.ValueOfString(item.publisher))
	set(ti, "value", protoreflect.ValueOfMessage(item.value.ProtoReflect()))
	msg := newMessage("cache_client.pubsub._SubscriptionItem")
	set(msg, "item", protoreflect.ValueOfMessage(ti))
	return stream.SendMsg(msg.Interface())
}
