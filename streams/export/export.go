package export

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/orderflow/orderflow/eventstore"
	"github.com/orderflow/orderflow/internal/pii"
	"github.com/orderflow/orderflow/order"
)

// Export formats.
const (
	FormatNDJSON = "ndjson"
	FormatCSV    = "csv"
)

// CSVHeader is the column order of a CSV export.
var CSVHeader = []string{"position", "event_id", "stream_id", "stream_type", "version", "type", "schema_version",
	"recorded_at", "correlation_id", "causation_id", "actor", "request_id", "data"}

// Export writes every event matching f to w in global order, one page in
// memory at a time. Events are in their current schema version, as
// projections and rebuilds see them (order.Registry.Current: an event of a
// type this code does not know is exported as stored), with their personal
// data opened by keys: the plaintext, or order.Erased where the customer's
// data was erased (nil keys: sealed, as stored). progress, if set, is
// called with the last position written.
func Export(ctx context.Context, store *eventstore.Store, reg *order.Registry, keys *pii.Keys, f eventstore.Filter, format string, w io.Writer, progress func(position int64)) (int64, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	var (
		n     int64
		write func(eventstore.RecordedEvent) error
	)
	switch format {
	case FormatNDJSON:
		enc := json.NewEncoder(bw)
		write = func(e eventstore.RecordedEvent) error { return enc.Encode(e.ToEnvelope()) }
	case FormatCSV:
		cw := csv.NewWriter(bw)
		if err := cw.Write(CSVHeader); err != nil {
			return 0, err
		}
		write = func(e eventstore.RecordedEvent) error {
			err := cw.Write([]string{
				strconv.FormatInt(e.Position, 10), e.ID.String(), e.StreamID.String(), e.StreamType,
				strconv.FormatInt(e.Version, 10), e.Type, strconv.Itoa(e.SchemaVersion),
				e.RecordedAt.UTC().Format(time.RFC3339Nano), e.Metadata.CorrelationID, e.Metadata.CausationID,
				e.Metadata.Actor, e.Metadata.RequestID, string(e.Data),
			})
			if err != nil {
				return err
			}
			cw.Flush()
			return cw.Error()
		}
	default:
		return 0, fmt.Errorf("export format %q: want %s or %s", format, FormatNDJSON, FormatCSV)
	}
	err := store.Scan(ctx, f, func(e eventstore.RecordedEvent) error {
		version, data, err := reg.Current(e.Type, e.SchemaVersion, e.Data)
		if err == nil && keys != nil {
			data, err = keys.OpenJSON(ctx, e.StreamID, data)
		}
		if err != nil {
			return fmt.Errorf("event %s: %w", e.ID, err)
		}
		e.SchemaVersion, e.Data = version, data
		if err := write(e); err != nil {
			return err
		}
		n++
		if progress != nil && n%5000 == 0 {
			progress(e.Position)
		}
		return nil
	})
	if err != nil {
		return n, err
	}
	return n, bw.Flush()
}
