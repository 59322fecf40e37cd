package momentotest

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

type topicKey struct{ cache, topic string }

// topic is the state of one topic. It is guarded by Server.mu.
type topic struct {
	seq  uint64
	subs map[chan protoreflect.Message]struct{}
}

// subscriberBuffer is how many items a slow subscriber may fall behind before
// the fake drops items for it (Momento would send a discontinuity).
const subscriberBuffer = 64

func (s *Server) publish(ctx context.Context, req protoreflect.Message) (proto.Message, error) {
	if err := s.begin(ctx, MethodPublish); err != nil {
		return nil, err
	}
	key := topicKey{getString(req, "cache_name"), getString(req, "topic")}
	if key.cache == "" || key.topic == "" {
		return nil, status.Error(codes.InvalidArgument, "momentotest: cache_name and topic are required")
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.authenticateLocked(ctx)
	if err != nil {
		return nil, err
	}
	if !c.allowed("topic", key.cache, key.topic, "TopicReadWrite", "TopicWriteOnly") {
		return nil, status.Errorf(codes.PermissionDenied, "momentotest: token may not publish to %q in cache %q", key.topic, key.cache)
	}
	t := s.topicLocked(key)
	t.seq++
	for sub := range t.subs {
		item := newMessage("cache_client.pubsub._TopicItem")
		set(item, "topic_sequence_number", protoreflect.ValueOfUint64(t.seq))
		set(item, "sequence_page", protoreflect.ValueOfUint64(1))
		set(item, "value", protoreflect.ValueOfMessage(proto.Clone(getMessage(req, "value").Interface()).ProtoReflect()))
		select {
		case sub <- item:
		default: // the subscriber is too far behind; drop, as a lossy topic may
		}
	}
	return newMessage("common._Empty").Interface(), nil
}

// topicLocked returns the state of key, creating it. s.mu must be held.
func (s *Server) topicLocked(key topicKey) *topic {
	t := s.topics[key]
	if t == nil {
		t = &topic{subs: make(map[chan protoreflect.Message]struct{})}
		s.topics[key] = t
	}
	return t
}

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

	sub := make(chan protoreflect.Message, subscriberBuffer)
	s.mu.Lock()
	c, err := s.authenticateLocked(ctx)
	if err == nil && !c.allowed("topic", key.cache, key.topic, "TopicReadWrite", "TopicReadOnly") {
		err = status.Errorf(codes.PermissionDenied, "momentotest: token may not subscribe to %q in cache %q", key.topic, key.cache)
	}
	if err != nil {
		s.mu.Unlock()
		return err
	}
	t := s.topicLocked(key)
	t.subs[sub] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(t.subs, sub)
		s.mu.Unlock()
	}()

	// A new subscription always starts with a heartbeat; the SDK waits for it.
	hb := newMessage("cache_client.pubsub._SubscriptionItem")
	set(hb, "heartbeat", protoreflect.ValueOfMessage(newMessage("cache_client.pubsub._Heartbeat")))
	if err := stream.SendMsg(hb.Interface()); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case item := <-sub:
			msg := newMessage("cache_client.pubsub._SubscriptionItem")
			set(msg, "item", protoreflect.ValueOfMessage(item))
			if err := stream.SendMsg(msg.Interface()); err != nil {
				return err
			}
		}
	}
}
