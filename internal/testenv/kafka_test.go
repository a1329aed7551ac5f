package testenv_test

import (
	"context"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/orderflow/orderflow/internal/testenv"
)

func TestStartServesKafkaOverTCPWithoutAutoCreatingTopics(t *testing.T) {
	t.Parallel()
	brokers := testenv.Broker(t).Addrs()
	testenv.CreateTopics(t, brokers, 2, "made")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := &kafkago.Client{Addr: kafkago.TCP(brokers...)}
	md, err := c.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{"made", "not-made"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range md.Topics {
		switch tp.Name {
		case "made":
			if tp.Error != nil || len(tp.Partitions) != 2 {
				t.Errorf("made: %v, %d partitions", tp.Error, len(tp.Partitions))
			}
		case "not-made":
			if tp.Error == nil {
				t.Error("unknown topic was auto-created")
			}
		}
	}
}
