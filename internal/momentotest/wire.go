package momentotest

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	// The SDK registers the descriptors of Momento's protos when it is linked;
	// the fake serves those very types, so it needs no copy of the protos.
	_ "github.com/momentohq/client-sdk-go/momento"
)

// messageType returns the registered type of a Momento proto message.
// It panics if the SDK did not register it: the fake cannot work without it.
func messageType(name protoreflect.FullName) protoreflect.MessageType {
	mt, err := protoregistry.GlobalTypes.FindMessageByName(name)
	if err != nil {
		panic(fmt.Sprintf("momentotest: proto message %s is not registered by the Momento SDK: %v", name, err))
	}
	return mt
}

// unaryFunc serves one unary RPC: it reads req and returns the response.
type unaryFunc func(ctx context.Context, req protoreflect.Message) (proto.Message, error)

// unaryMethod builds a grpc.MethodDesc that decodes requests of type in and
// hands them to fn, honouring any server interceptor.
func unaryMethod(service, method string, in protoreflect.MessageType, fn unaryFunc) grpc.MethodDesc {
	full := "/" + service + "/" + method
	return grpc.MethodDesc{
		MethodName: method,
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			req := in.New().Interface()
			if err := dec(req); err != nil {
				return nil, err
			}
			handle := func(ctx context.Context, req any) (any, error) {
				return fn(ctx, req.(proto.Message).ProtoReflect())
			}
			if interceptor == nil {
				return handle(ctx, req)
			}
			return interceptor(ctx, req, &grpc.UnaryServerInfo{Server: srv, FullMethod: full}, handle)
		},
	}
}

// field returns the descriptor of m's field called name, panicking on a
// misspelt name (a bug in the fake, not in its caller).
func field(m protoreflect.Message, name protoreflect.Name) protoreflect.FieldDescriptor {
	fd := m.Descriptor().Fields().ByName(name)
	if fd == nil {
		panic(fmt.Sprintf("momentotest: %s has no field %s", m.Descriptor().FullName(), name))
	}
	return fd
}

func getBytes(m protoreflect.Message, name protoreflect.Name) []byte {
	return m.Get(field(m, name)).Bytes()
}

func getString(m protoreflect.Message, name protoreflect.Name) string {
	return m.Get(field(m, name)).String()
}

func getUint(m protoreflect.Message, name protoreflect.Name) uint64 {
	return m.Get(field(m, name)).Uint()
}

func getEnum(m protoreflect.Message, name protoreflect.Name) protoreflect.EnumNumber {
	return m.Get(field(m, name)).Enum()
}

// getMessage returns the message in field name, or nil if it is not set.
func getMessage(m protoreflect.Message, name protoreflect.Name) protoreflect.Message {
	fd := field(m, name)
	if !m.Has(fd) {
		return nil
	}
	return m.Get(fd).Message()
}

// whichOneof returns the name of the field set in m's oneof called oneof, or "".
func whichOneof(m protoreflect.Message, oneof protoreflect.Name) protoreflect.Name {
	od := m.Descriptor().Oneofs().ByName(oneof)
	if od == nil {
		panic(fmt.Sprintf("momentotest: %s has no oneof %s", m.Descriptor().FullName(), oneof))
	}
	if fd := m.WhichOneof(od); fd != nil {
		return fd.Name()
	}
	return ""
}

func set(m protoreflect.Message, name protoreflect.Name, v protoreflect.Value) {
	m.Set(field(m, name), v)
}

// newMessage returns an empty message of the registered type name.
func newMessage(name protoreflect.FullName) protoreflect.Message {
	return messageType(name).New()
}

// enumNumber returns the number of the value called value in the enum type of
// m's field called name.
func enumNumber(m protoreflect.Message, name protoreflect.Name, value protoreflect.Name) protoreflect.EnumNumber {
	ev := field(m, name).Enum().Values().ByName(value)
	if ev == nil {
		panic(fmt.Sprintf("momentotest: enum of %s.%s has no value %s", m.Descriptor().FullName(), name, value))
	}
	return ev.Number()
}

// enumName returns the name of number in the enum type of m's field called name.
func enumName(m protoreflect.Message, name protoreflect.Name, number protoreflect.EnumNumber) string {
	ev := field(m, name).Enum().Values().ByNumber(number)
	if ev == nil {
		return fmt.Sprintf("%d", number)
	}
	return string(ev.Name())
}
