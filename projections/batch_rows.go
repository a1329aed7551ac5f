package projections

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/orderflow/orderflow/order"
)

// versionRows are the versions rows a batch writes, column by column.
type versionRows struct {
	ids     arr[pgtype.UUID]
	numbers arr[bigint]
	json    bytes.Buffer  // every state's JSON, one after the other
	enc     *json.Encoder // into json
	ends    []int         // end of each state in json
	cut     arr[text]
}

func (v *versionRows) add(id pgtype.UUID, s order.State) error {
	if v.enc == nil {
		v.enc = json.NewEncoder(&v.json)
	}
	if err := v.enc.Encode(s); err != nil {
		return fmt.Errorf("encode state of order %x: %w", id.Bytes, err)
	}
	v.ids, v.numbers = append(v.ids, id), append(v.numbers, bigint(s.Version))
	v.ends = append(v.ends, v.json.Len())
	return nil
}

// states cuts json into one value per row, once it no longer grows: one
// string for all of them, so that each state is a substring, and the
// statement casts them to jsonb.
func (v *versionRows) states() arr[text] {
	all, from := v.json.String(), 0
	for _, end := range v.ends {
		v.cut, from = append(v.cut, text(all[from:end])), end
	}
	return v.cut
}

func (v *versionRows) reset() {
	v.json.Reset() // the encoder keeps writing into it
	v.ids, v.numbers, v.ends, v.cut = v.ids[:0], v.numbers[:0], v.ends[:0], v.cut[:0]
}

// checkpointRows are the checkpoints a batch moves, by partition.
type checkpointRows struct {
	partitions arr[integer]
	positions  arr[bigint]
	recordedAt arr[tstz]
}

func (c *checkpointRows) reset() {
	c.partitions, c.positions, c.recordedAt = c.partitions[:0], c.positions[:0], c.recordedAt[:0]
}

// A checkpoint row is the highest position applied from its partition:
// greatest() keeps it from moving back when two batches of one partition
// commit out of order (a rebalance).
const upsertCheckpoints = `INSERT INTO projection_checkpoints (projection, partition, position, recorded_at)
	SELECT $1, p, pos, at FROM unnest($2::integer[], $3::bigint[], $4::timestamptz[]) AS c(p, pos, at)
	ON CONFLICT (projection, partition) DO UPDATE
	SET position = greatest(projection_checkpoints.position, excluded.position),
	    recorded_at = CASE WHEN excluded.position > projection_checkpoints.position
	                       THEN excluded.recorded_at ELSE projection_checkpoints.recorded_at END,
	    updated_at = now()`

// projectionSQL is the runtime's SQL on one projection's versions table.
type projectionSQL struct {
	createVersions, lockVersions, updateVersions, deleteUnborn string
}

// sqlOf is p's SQL, built once per projection name.
func sqlOf(p Projection) projectionSQL {
	if q, ok := sqlCache.Load(p.Name()); ok {
		return q.(projectionSQL)
	}
	vt := versionsTable(p)
	q := projectionSQL{
		createVersions: `INSERT INTO ` + vt + ` (stream_id, version, state)
			SELECT id, 0, '{}' FROM unnest($1::uuid[]) AS n(id) ON CONFLICT (stream_id) DO NOTHING`,
		lockVersions: `SELECT stream_id, version, state FROM ` + vt + `
			WHERE stream_id = ANY($1::uuid[]) ORDER BY stream_id FOR UPDATE`,
		updateVersions: `UPDATE ` + vt + ` AS v SET version = n.version, state = n.state::jsonb
			FROM unnest($1::uuid[], $2::bigint[], $3::text[]) AS n(id, version, state) WHERE v.stream_id = n.id`,
		deleteUnborn: `DELETE FROM ` + vt + ` WHERE stream_id = ANY($1::uuid[]) AND version = 0`,
	}
	sqlCache.Store(p.Name(), q)
	return q
}

var sqlCache sync.Map // projection name → projectionSQL
