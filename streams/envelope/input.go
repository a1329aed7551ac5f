package envelope

import (
	"encoding/binary"
	"hash"

	"github.com/ThreeDotsLabs/watermill/message"
	kafkago "github.com/segmentio/kafka-go"
)

// inputPrefix starts every signing input: it names the scheme, so that a
// MAC made for anything else under the same key never passes for one.
const inputPrefix = "orderflow-signature-v1"

// signed is what the MAC covers, taken from one message.
type signed struct {
	key, value []byte
	headers    [len(signedHeaders)][]byte
	signature  []byte
	hasSig     bool
	// duplicate names a signed header (or the signature) that appeared more
	// than once; such a message is never signed or believed.
	duplicate string
}

// writeInput writes the signing input of f to h: the one definition of
// what is signed, for the Signer and the Verifier alike (doc.go).
func writeInput(h hash.Hash, f *signed) {
	var n [4]byte
	field := func(b []byte) {
		binary.BigEndian.PutUint32(n[:], uint32(len(b))) // #nosec G115 -- a Kafka message is far below 4 GiB (message.max.bytes)
		h.Write(n[:])
		h.Write(b)
	}
	h.Write([]byte(inputPrefix))
	field(f.key)
	for _, v := range f.headers {
		field(v)
	}
	field(f.value)
}

func headerIndex(name string) int {
	for i, s := range signedHeaders {
		if s == name {
			return i
		}
	}
	return -1
}

// fromKafka takes the signed fields of a Kafka message.
func fromKafka(m kafkago.Message) signed {
	f := signed{key: m.Key, value: m.Value}
	var seen [len(signedHeaders)]bool
	for _, h := range m.Headers {
		if h.Key == HeaderSignature {
			if f.hasSig {
				f.duplicate = h.Key
			}
			f.signature, f.hasSig = h.Value, true
			continue
		}
		if i := headerIndex(h.Key); i >= 0 {
			if seen[i] {
				f.duplicate = h.Key
			}
			f.headers[i], seen[i] = h.Value, true
		}
	}
	return f
}

// fromWatermill takes the signed fields of a Kafka message as
// streams/kafka delivers it to watermill: headers as metadata, the key in
// keyMetadata. Metadata is a map, so a header sent twice arrives once
// (the last copy); the MAC covers that copy, and every consumer of the
// message reads that same copy.
func fromWatermill(msg *message.Message, keyMetadata string) signed {
	f := signed{key: []byte(msg.Metadata.Get(keyMetadata)), value: msg.Payload}
	for i, name := range signedHeaders {
		f.headers[i] = []byte(msg.Metadata.Get(name))
	}
	sig, ok := msg.Metadata[HeaderSignature]
	f.signature, f.hasSig = []byte(sig), ok
	return f
}
